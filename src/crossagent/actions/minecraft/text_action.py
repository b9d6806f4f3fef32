"""Text actions (TA, spec section 2): `Action: move(DX, DY) and press(KEY, ...) and click(left|right)`.

`move` is a mouse delta in pixels (dx turns yaw, dy turns pitch, 0.15 degree per
pixel), `press` names keys of the keyboard table, `click` names mouse buttons.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crossagent.actions.minecraft.env_action import (
    BUTTON_TO_KEY,
    KEY_TO_BUTTON,
    EnvAction,
    camera_of,
    degrees_to_pixels,
    make_action,
    pixels_to_degrees,
)
from crossagent.actions.parse_error import ParseError

TAG = "Action:"
# `middle` is not in the spec's grammar, but the released encoder writes it for
# pickItem, so we read and write it too rather than drop the button.
CLICK_TO_BUTTON: dict[str, str] = {"left": "attack", "right": "use", "middle": "pickItem"}
BUTTON_TO_CLICK: dict[str, str] = {button: click for click, button in CLICK_TO_BUTTON.items()}

_KEY_ORDER = {key: i for i, key in enumerate(KEY_TO_BUTTON)}
_CLICK_ORDER = {click: i for i, click in enumerate(CLICK_TO_BUTTON)}

_NUMBER = re.compile(r"""^\s*(['"]?)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*\1\s*$""")
_PART = re.compile(r"\b(move|press|click)\s*\(([^()]*)\)")
_PART_START = re.compile(r"\b(move|press|click)\s*\(")
# What may sit between the parts: joiners, punctuation and chat special tokens.
_FILLER = re.compile(r"^(?:\s|\band\b|[,;.]|<\|[^|>]*\|>)*$")


@dataclass(frozen=True)
class TextAction:
    """One text action. `keys` and `clicks` are kept in canonical order, without repeats."""

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
        object.__setattr__(self, "keys", tuple(sorted(set(self.keys), key=_KEY_ORDER.__getitem__)))
        object.__setattr__(self, "clicks", tuple(sorted(set(self.clicks), key=_CLICK_ORDER.__getitem__)))

    def format(self) -> str:
        """Canonical text: move, then press (table order), then clicks. The released
        systems always write move and press, so the null action is `move(0, 0) and press()`."""
        parts = [f"move({_format_number(self.dx)}, {_format_number(self.dy)})", f"press({', '.join(self.keys)})"]
        parts += [f"click({click})" for click in self.clicks]
        return f"{TAG} {' and '.join(parts)}"

    def to_env_action(self) -> EnvAction:
        pressed = [KEY_TO_BUTTON[key] for key in self.keys] + [CLICK_TO_BUTTON[c] for c in self.clicks]
        return make_action(pressed, camera=(pixels_to_degrees(self.dy), pixels_to_degrees(self.dx)))

    @classmethod
    def from_env_action(cls, action: Mapping[str, Any]) -> TextAction:
        """Degrees become whole pixels (rounded half away from zero, so that a move
        and its mirror encode symmetrically)."""
        pitch, yaw = camera_of(action)
        keys = [key for button, key in BUTTON_TO_KEY.items() if action.get(button, 0)]
        clicks = [click for button, click in BUTTON_TO_CLICK.items() if action.get(button, 0)]
        return cls(dx=_round_half_away(degrees_to_pixels(yaw)), dy=_round_half_away(degrees_to_pixels(pitch)),
                   keys=tuple(keys), clicks=tuple(clicks))


def parse_text_action(text: str) -> TextAction | ParseError:
    """Read the last `Action:` line of `text` (or all of `text` when it has no tag).

    Lenient: numbers may be signed, quoted or decimal; parts may come in any order
    with extra spaces; `no_op` anywhere in the action means the null action.
    Never raises; anything unreadable comes back as a ParseError.
    """
    body = _action_body(text)
    if "no_op" in body:
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

    keys, clicks = [], []
    for name, args in parts:
        if name == "move":
            continue
        names = [_normalise_name(arg) for arg in args.split(",")]
        names = [n for n in names if n]
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


def _round_half_away(value: float) -> int:
    return int(math.copysign(math.floor(abs(value) + 0.5), value))
