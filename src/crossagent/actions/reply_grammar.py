"""The replies a chain of levels may be, as one Lark grammar (llguidance's dialect) for constrained decoding.

A reply is the canonical text `chain.format_reply` writes: one line per level, abstract to concrete,
joined by newlines, each line the language of its level module's `grammar()` (built from the same
vocabulary its parser reads). The grammar's end is the end of the reply: the decoder may then only
write the end-of-reply token. Every reply it accepts parses without error and holds the levels asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

from crossagent.actions.levels import LEVELS, MODULE_OF, concreteness


def chain_grammar(levels: Sequence[str], every_level: bool) -> str:
    """Replies of `levels` in their abstract-to-concrete order: all of them (`every_level`), or any
    non-empty ordered selection of them (the model picks its chain)."""
    unknown = [level for level in levels if level not in LEVELS]
    if unknown or not levels:
        raise ValueError(f"levels {list(levels)}: each must be one of {', '.join(LEVELS)}, and at least one")
    ordered = sorted(dict.fromkeys(levels), key=concreteness)
    rules = [f"{level}_line: {MODULE_OF[level].grammar()}" for level in ordered]
    if every_level:
        start = ' "\\n" '.join(f"{level}_line" for level in ordered)
        return "\n".join([f"start: {start}", *rules])
    # from_L: the chain from level L on, each later level present or skipped.
    chains = []
    for index, level in enumerate(ordered):
        later = ordered[index + 1:]
        rest = f' ("\\n" ({" | ".join(f"from_{name}" for name in later)}))?' if later else ""
        chains.append(f"from_{level}: {level}_line{rest}")
    start = " | ".join(f"from_{level}" for level in ordered)
    return "\n".join([f"start: {start}", *chains, *rules])
