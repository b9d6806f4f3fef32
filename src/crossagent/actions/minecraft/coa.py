"""Chain of Action (CoA, spec section 7): a Minecraft reply split into its levels.

    Skill: …        (abstract)
    Grounding: …
    Motion: …
    Action: …       (concrete)

Any subset may be present; the executed level is the most concrete one present.
The tag-wrapped layout (a profile option) writes the same levels as
`<skill>…</skill>`, `<grounding>…</grounding>`, `<motion>…</motion>`, `<raw>…</raw>`;
the parser reads both layouts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable

from crossagent.actions.parse_error import ParseError
from crossagent.actions.minecraft.grounding import GroundingAction, parse_grounding
from crossagent.actions.minecraft.motion_labeller import parse_motion
from crossagent.actions.minecraft.profile import CROSSAGENT, McProfile
from crossagent.actions.minecraft.text_action import TextAction, parse_text_action

LEVELS: tuple[str, ...] = ("skill", "grounding", "motion", "action")  # abstract to concrete
_TAGS = {"skill": "Skill", "grounding": "Grounding", "motion": "Motion", "action": "Action"}
# A level's tag opens a line (after spaces or markdown bullets/emphasis).
_TAG_LINE = re.compile(r"^[\s\-*>#]*(Skill|Grounding|Motion|Action)\s*:", re.MULTILINE)
_WRAPPERS = {"skill": "skill", "grounding": "grounding", "motion": "motion", "action": "raw"}
_WRAPPED = re.compile(r"<(skill|grounding|motion|raw)>(.*?)</\1>", re.DOTALL)
_LEVEL_OF_WRAPPER = {wrapper: level for level, wrapper in _WRAPPERS.items()}

LevelContent = str | GroundingAction | frozenset[str] | TextAction | ParseError


def parse_skill(text: str) -> str | ParseError:
    start = text.rfind("Skill:")
    body = (text if start < 0 else text[start + len("Skill:"):].split("\n", 1)[0]).strip()
    return body if body else ParseError("empty skill", text)


_PARSERS: dict[str, Callable[[str], LevelContent]] = {
    "skill": parse_skill,
    "grounding": parse_grounding,
    "motion": parse_motion,
    "action": parse_text_action,
}


@dataclass(frozen=True)
class ChainOfAction:
    # Level -> its parsed content (or why it could not be read), for the levels present, abstract first.
    levels: dict[str, LevelContent] = field(default_factory=dict)
    # How many lines each level had; the last line of a level is the one kept.
    line_counts: dict[str, int] = field(default_factory=dict)

    @property
    def executed_level(self) -> str | None:
        """The most concrete level present, or None for a reply with no recognised level."""
        return next((level for level in reversed(LEVELS) if level in self.levels), None)

    @property
    def executed(self) -> LevelContent | None:
        level = self.executed_level
        return None if level is None else self.levels[level]


def format_chain_of_action(lines: Mapping[str, str], profile: McProfile = CROSSAGENT) -> str:
    """One reply from each level's own line (`{"motion": "Motion: turn left", "action": "Action: …"}`),
    abstract first, in the profile's layout."""
    unknown = sorted(set(lines) - set(LEVELS))
    if unknown:
        raise ValueError(f"unknown CoA levels {unknown} (known: {', '.join(LEVELS)})")
    ordered = [(level, lines[level]) for level in LEVELS if level in lines]
    for level, line in ordered:
        if not line.startswith(f"{_TAGS[level]}:"):
            raise ValueError(f"the {level} line must start with `{_TAGS[level]}:`, got {line!r}")
    if profile.coa_layout == "lines":
        return "\n".join(line for _, line in ordered)
    # Tags delimit the content, so the text's own tag and trailing space are left out.
    return "\n".join(f"<{_WRAPPERS[level]}>{line[len(_TAGS[level]) + 1:].strip()}</{_WRAPPERS[level]}>"
                     for level, line in ordered)


def parse_chain_of_action(text: str) -> ChainOfAction:
    """Every tagged line (or tag-wrapped span) of `text`, parsed by its level's parser. Never raises."""
    text = _WRAPPED.sub(lambda m: f"\n{_TAGS[_LEVEL_OF_WRAPPER[m[1]]]}: {' '.join(m[2].split())}\n", text)
    lines: dict[str, list[str]] = {}
    for match in _TAG_LINE.finditer(text):
        level = match.group(1).lower()
        line_end = text.find("\n", match.end())
        body = text[match.end(): len(text) if line_end < 0 else line_end]
        lines.setdefault(level, []).append(f"{_TAGS[level]}:{body}")
    levels = {level: _PARSERS[level](lines[level][-1]) for level in LEVELS if level in lines}
    return ChainOfAction(levels=levels, line_counts={level: len(lines[level]) for level in levels})
