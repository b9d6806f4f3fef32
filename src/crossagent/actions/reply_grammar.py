"""The replies a chain of levels may be, as one Lark grammar (llguidance's dialect) for constrained decoding.

A reply is the canonical text `chain.format_reply` writes: one line per level, abstract to concrete,
joined by newlines, each line the language of its level module's `grammar()` (built from the same
vocabulary its parser reads). The grammar's end is the end of the reply: the decoder may then only
write the end-of-reply token. Every reply it accepts parses without error and holds the levels asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

from crossagent.actions.levels import LEVELS, MODULE_OF, concreteness


def chain_grammar(levels: Sequence[str], every_level: bool, final_level: str | None = None) -> str:
    """Replies of `levels` in their abstract-to-concrete order: all of them (`every_level`), or any
    non-empty ordered selection of them (the model picks its chain), which with `final_level` must end
    at that level (slow mode executes the `Action:` line, so it asks for chains that end there)."""
    unknown = [level for level in levels if level not in LEVELS]
    if unknown or not levels:
        raise ValueError(f"levels {list(levels)}: each must be one of {', '.join(LEVELS)}, and at least one")
    if final_level is not None and final_level not in levels:
        raise ValueError(f"final level {final_level!r} is not one of the levels {list(levels)}")
    ordered = sorted(dict.fromkeys(levels), key=concreteness)
    if final_level is not None:
        ordered = [level for level in ordered if concreteness(level) <= concreteness(final_level)]
    rules = [f"{level}_line: {MODULE_OF[level].grammar()}" for level in ordered]
    if every_level:
        start = ' "\\n" '.join(f"{level}_line" for level in ordered)
        return "\n".join([f"start: {start}", *rules])
    # from_L: the chain from level L on, each later level present or skipped; with a final level (the last
    # one kept), a chain goes on until it reaches it.
    chains = []
    for index, level in enumerate(ordered):
        later = ordered[index + 1:]
        rest = f'"\\n" ({" | ".join(f"from_{name}" for name in later)})' if later else ""
        if rest:
            rest = f" {rest}" if final_level is not None else f" ({rest})?"
        chains.append(f"from_{level}: {level}_line{rest}")
    start = " | ".join(f"from_{level}" for level in ordered)
    return "\n".join([f"start: {start}", *chains, *rules])
