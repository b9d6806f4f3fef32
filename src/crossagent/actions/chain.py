"""Chain-of-Action replies: `Skill:`, `Grounding:`, `Motion:`, `Latent:`, `Action:` lines, any subset.

    Skill: collect wood
    Grounding: collect <|object_ref_start|>tree<|object_ref_end|><|point_start|>(611,388)<|point_end|>
    Action: move_right

The level that executes is the most concrete one present. Lines without a level tag (a
thought, a greeting) are ignored; when a level appears twice, the last line wins, as in the
released Minecraft systems. Nothing a model writes makes the parser raise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crossagent.actions.levels import LEVEL_MODULES, LEVEL_OF_TAG, LEVELS, MODULE_OF, concreteness
from crossagent.actions.parse_error import ParseError


@dataclass(frozen=True)
class Reply:
    text: str
    actions: dict[str, object] = field(default_factory=dict)  # level -> parsed action, valid lines only
    errors: dict[str, ParseError] = field(default_factory=dict)  # level -> why its last line did not parse
    line_counts: dict[str, int] = field(default_factory=dict)  # level -> tagged lines seen

    @property
    def levels(self) -> tuple[str, ...]:
        """Levels present (valid or not), abstract to concrete."""
        return tuple(level for level in LEVELS if level in self.actions or level in self.errors)

    @property
    def executed_level(self) -> str | None:
        """The most concrete level present, or None when the reply has no level tag."""
        return self.levels[-1] if self.levels else None

    @property
    def error(self) -> ParseError | None:
        """Why the reply cannot execute in dynamic mode, or None."""
        if not self.levels:
            tags = ", ".join(module.TAG for module in LEVEL_MODULES)
            return ParseError(f"no level tag ({tags}) in the reply", self.text)
        return self.errors.get(self.executed_level)

    def action(self, level: str):
        return self.actions.get(level)


def parse_reply(text: object) -> Reply:
    """Parse a model reply; malformed lines become structured errors, never exceptions."""
    if not isinstance(text, str):
        return Reply(str(text), errors={}, line_counts={})
    actions: dict[str, object] = {}
    errors: dict[str, ParseError] = {}
    counts: dict[str, int] = {}
    for line in text.splitlines():
        stripped = line.strip().lstrip("-*> ").strip()
        level, body = _split_tag(stripped)
        if level is None:
            continue
        counts[level] = counts.get(level, 0) + 1
        parsed = MODULE_OF[level].parse(body)
        actions.pop(level, None)
        errors.pop(level, None)
        if isinstance(parsed, ParseError):
            errors[level] = parsed
        else:
            actions[level] = parsed
    return Reply(text, actions, errors, counts)


def _split_tag(line: str) -> tuple[str | None, str]:
    head, colon, body = line.partition(":")
    if not colon:
        return None, line
    level = LEVEL_OF_TAG.get(head.strip().lower() + ":")
    return level, body


def format_reply(actions: dict[str, object]) -> str:
    """Canonical reply text: one line per level, abstract to concrete."""
    ordered = sorted(actions, key=concreteness)
    return "\n".join(MODULE_OF[level].to_text(actions[level]) for level in ordered)
