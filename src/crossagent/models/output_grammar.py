"""The replies each output format asks for (models.prompts), as a grammar for constrained decoding."""

from __future__ import annotations

from functools import lru_cache

from crossagent.actions.chain import Reply
from crossagent.actions.reply_grammar import chain_grammar
from crossagent.models.constrained_decoding import Grammar
from crossagent.models.prompts import LEVELS_OF_FORMAT, PICKS_ITS_LEVELS, check_format


@lru_cache(maxsize=None)
def output_grammar(output_format: str, final_level: str | None = None) -> Grammar:
    """The canonical replies of `output_format`: its levels' lines in order, then the end of the reply. A
    format that picks its levels (mixed) picks a chain that ends at `final_level` when one is given; a
    format with a fixed chain keeps it."""
    check_format(output_format)
    picks = output_format in PICKS_ITS_LEVELS
    return Grammar(chain_grammar(LEVELS_OF_FORMAT[output_format], every_level=not picks,
                                 final_level=final_level if picks else None))


def follows_format(reply: Reply, output_format: str) -> bool:
    """Whether a parsed reply holds the levels its format asks for, each once and every line valid (what
    the grammar promises)."""
    check_format(output_format)
    levels = LEVELS_OF_FORMAT[output_format]
    if reply.error is not None or reply.errors or any(count > 1 for count in reply.line_counts.values()):
        return False
    if output_format in PICKS_ITS_LEVELS:
        return set(reply.levels) <= set(levels)
    return reply.levels == levels

