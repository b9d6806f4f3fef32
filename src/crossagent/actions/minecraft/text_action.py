"""Text actions (TA, spec section 2): `Action: move(DX, DY) and press(KEY, ...) and click(left|right)`.

`move` is a mouse delta in pixels (dx turns yaw, dy turns pitch, 0.15 degree per
pixel), `press` names keys of the keyboard table, `click` names mouse buttons.
How an action is written (empty parts, key order, rounding, ...) is the profile's
business (profile.py); the parser reads every profile's form.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crossagent.actions.minecraft.env_action import (
    KEY_TO_BUTTON,
    EnvAction,
    camera_of,
    degrees_to_pixels,
    make_action,
    pixels_to_degrees,
)
from crossagent.actions.minecraft.profile import CROSSAGENT, McProfile
from crossagent.actions.parse_error import ParseError

TAG = "Action:"
NO_OP = "no_op"
# `middle` is not in the spec's grammar, but the released encoder writes it for
# pickItem, so we read and write it too rather than drop the button.
CLICK_TO_BUTTON: dict[str, str] = {"left": "attack", "right": "use", "middle": "pickItem"}
BUTTON_TO_CLICK: dict[str, str] = {button: click for click, button in CLICK_TO_BUTTON.items()}

_CLICK_ORDER = {click: i for i, click in enumerate(CLICK_TO_BUTTON)}

_NUMBER = re.compile(r"""^\s*(['"]?)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*\1\s*$""")
_PART = re.compile(r"\b(move|press|click)\s*\(([^()]*)\)")
_PART_START = re.compile(r"\b(move|press|click)\s*\(")
# What may sit between the parts: joiners, punctuation and chat special tokens.
_FILLER = re.compile(r"^(?:\s|\band\b|[,;.]|<\|[^|>]*\|>)*$")


@dataclass(frozen=True)
class TextAction:
    """One text action as written: `dx`, `dy` are the written move (mouse pixels times the
    profile's camera scale); `keys` keep the order given, without repeats (the released
    encoder keeps the recording's order); `clicks` are kept in left, right, middle order."""

    dx: float = 0
    dy: float = 0
    keys: tuple[str, ...] = ()
    clicks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in self.keys:
            if key not in KEY_TO_BUTTON:
                raise ValueError(f"unknown key {key!r}")
        for click in self.clicks:
            if click not in CLICK_TO_BUTTON:
                raise ValueError(f"unknown mouse button {click!r}")
        object.__setattr__(self, "keys", tuple(dict.fromkeys(self.keys)))
        object.__setattr__(self, "clicks", tuple(sorted(set(self.clicks), key=_CLICK_ORDER.__getitem__)))

    def format(self, profile: McProfile = CROSSAGENT) -> str:
        """Parts joined by ` and `: move, press, then clicks. Empty move/press parts are
        written or left out as the profile says; with nothing left the text is `no_op`."""
        keys = sorted(self.keys, key=profile.env_key_order.index) if profile.sort_keys else self.keys
        parts = []
        if profile.write_empty_parts or self.dx or self.dy:
            parts.append(f"move({_format_number(self.dx)}, {_format_number(self.dy)})")
        if profile.write_empty_parts or keys:
            parts.append(f"press({', '.join(profile.key_names.get(key, key) for key in keys)})")
        parts += [f"click({click})" for click in self.clicks]
        return f"{TAG} {' and '.join(parts) if parts else NO_OP}{profile.text_suffix}"

    def to_env_action(self, profile: McProfile = CROSSAGENT) -> EnvAction:
        pressed = [KEY_TO_BUTTON[key] for key in self.keys] + [CLICK_TO_BUTTON[c] for c in self.clicks]
        dx, dy = self.dx / profile.camera_scale, self.dy / profile.camera_scale
        return make_action(pressed, camera=(pixels_to_degrees(dy), pixels_to_degrees(dx)))

    @classmethod
    def from_env_action(cls, action: Mapping[str, Any], profile: McProfile = CROSSAGENT,
                        recorded_keys: Sequence[str] = ()) -> TextAction:
        """Degrees become the written move, rounded by the profile's rule. Keys come in the
        order of `recorded_keys` (a recording's key names, those pressed), then the other
        pressed keys in the profile's env_key_order."""
        pitch, yaw = camera_of(action)
        pressed = [key for key in profile.env_key_order if action.get(KEY_TO_BUTTON[key], 0)]
        keys = [key for key in recorded_keys if key in pressed] + pressed
        clicks = [click for button, click in BUTTON_TO_CLICK.items() if action.get(button, 0)]
        return cls(dx=profile.round_pixels(degrees_to_pixels(yaw) * profile.camera_scale),
                   dy=profile.round_pixels(degrees_to_pixels(pitch) * profile.camera_scale),
                   keys=tuple(keys), clicks=tuple(clicks))


def format_action_chunk(actions: Sequence[TextAction], profile: McProfile = CROSSAGENT) -> str:
    """Several actions in one reply (an action chunk): one `Action:` line each, in time order."""
    if not actions:
        raise ValueError("an action chunk needs at least one action")
    return "\n".join(action.format(profile) for action in actions)


def parse_action_chunk(text: str, profile: McProfile = CROSSAGENT) -> tuple[TextAction, ...] | ParseError:
    """Every `Action:` line of `text`, in order; the first unreadable one is the error."""
    starts = [match.start() for match in re.finditer(re.escape(TAG), text)]
    if not starts:
        return ParseError("no `Action:` line", text)
    actions = []
    for start in starts:
        parsed = parse_text_action(text[start:].split("\n", 1)[0], profile)
        if isinstance(parsed, ParseError):
            return parsed
        actions.append(parsed)
    return tuple(actions)


def parse_text_action(text: str, profile: McProfile = CROSSAGENT) -> TextAction | ParseError:
    """Read the last `Action:` line of `text` (or all of `text` when it has no tag).

    Lenient: numbers may be signed, quoted or decimal; parts may come in any order
    with extra spaces; `no_op` anywhere in the action means the null action.
    Key names may be the keyboard table's or the profile's renamed ones.
    Never raises; anything unreadable comes back as a ParseError.
    """
    body = _action_body(text)
    if NO_OP in body:
        return TextAction()
    if not body.strip():
        return ParseError("empty action", text)
    parts = _PART.findall(body)
    if len(parts) != len(_PART_START.findall(body)):
        return ParseError("a move/press/click part is unclosed or nested", text)
    if not parts:
        return ParseError("no move(...), press(...) or click(...) part", text)
    leftover = _PART.sub(" ", body)
    if not _FILLER.match(leftover):
        return ParseError(f"unexpected text {leftover.strip()!r}", text)

    moves = [args for name, args in parts if name == "move"]
    if len(moves) > 1:
        return ParseError("more than one move(...) part", text)
    dx = dy = 0.0
    if moves:
        numbers = [_parse_number(arg) for arg in moves[0].split(",")]
        if len(numbers) != 2 or None in numbers:
            return ParseError(f"move needs two numbers, got ({moves[0]})", text)
        dx, dy = numbers

    renamed = {written.lower(): key for key, written in profile.key_names.items()}
    keys, clicks = [], []
    for name, args in parts:
        if name == "move":
            continue
        names = [_normalise_name(arg) for arg in args.split(",")]
        names = [renamed.get(n, n) for n in names if n] if name == "press" else [n for n in names if n]
        table = KEY_TO_BUTTON if name == "press" else CLICK_TO_BUTTON
        unknown = [n for n in names if n not in table]
        if unknown:
            return ParseError(f"unknown {'key' if name == 'press' else 'mouse button'} {unknown[0]!r}", text)
        (keys if name == "press" else clicks).extend(names)
    return TextAction(dx=dx, dy=dy, keys=tuple(keys), clicks=tuple(clicks))


def _action_body(text: str) -> str:
    """The rest of the line after the last tag: the last `Action:` is the one executed."""
    start = text.rfind(TAG)
    if start < 0:
        return text
    return text[start + len(TAG):].split("\n", 1)[0]


def _parse_number(arg: str) -> float | None:
    match = _NUMBER.match(arg)
    if match is None:
        return None
    value = float(match.group(2))
    return value if math.isfinite(value) else None


def _normalise_name(arg: str) -> str:
    name = arg.strip().strip("'\"").strip().lower()
    return name.removeprefix("key.keyboard.")


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
