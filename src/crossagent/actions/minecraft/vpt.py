"""VPT contractor recordings (spec section 8): one JSON object per 20 Hz frame -> env actions.

The conversion is the one VPT's data loader does (and MineStudio/OpenHA copy), so
actions we derive match the actions their models were trained on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crossagent.actions.minecraft.env_action import (
    KEY_TO_BUTTON,
    MOUSE_BUTTON_TO_BUTTON,
    EnvAction,
    camera_of,
    degrees_to_pixels,
    make_action,
    pixels_to_degrees,
)
from crossagent.actions.minecraft.profile import CROSSAGENT, McProfile
from crossagent.actions.minecraft.text_action import TextAction

KEY_PREFIX = "key.keyboard."
ATTACK_MOUSE_BUTTON = 0
# Far beyond any hand: 100000 pixels in one 50 ms frame is 41 turns. A bigger delta is garbage
# that would overflow or poison the camera (1e308 pixels * 0.15 is inf).
MAX_MOUSE_DELTA_PX = 100_000
# No VPT field needs more digits (milliseconds since 1970 have 13); longer integers are garbage.
MAX_INTEGER_DIGITS = 20


class VptFormatError(ValueError):
    """A recording line that is not a VPT frame; the message names the file and line."""


class _NotANumber(ValueError):
    """A JSON number a recording must not hold (NaN, Infinity, overflowing or absurdly long)."""


def _refuse_constant(name: str) -> float:
    raise _NotANumber(f"{name} is not a number (JSON has no NaN or Infinity)")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _NotANumber(f"the number {_shorten(literal)} overflows a float")
    return value


def _bounded_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _NotANumber(f"a {len(literal.lstrip('-'))}-digit integer ({_shorten(literal)}) is not a recording value")
    return int(literal)


def _shorten(literal: str) -> str:
    return literal if len(literal) <= 24 else f"{literal[:12]}...{literal[-6:]}"


def read_vpt_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The frames of a VPT jsonl file, checked for the fields the conversion reads.
    Blank lines are skipped."""
    frames = []
    with open(path, encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                frame = json.loads(line, parse_constant=_refuse_constant, parse_float=_finite_float,
                                   parse_int=_bounded_int)
            except json.JSONDecodeError as error:
                raise VptFormatError(f"{path}:{line_number}: not valid JSON ({error.msg})") from None
            except _NotANumber as error:
                raise VptFormatError(f"{path}:{line_number}: {error}") from None
            problem = _frame_problem(frame)
            if problem:
                raise VptFormatError(f"{path}:{line_number}: {problem}")
            frames.append(frame)
    return frames


def _frame_problem(frame: Any) -> str | None:
    def is_number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def is_list_of(value: Any, kind: type) -> bool:
        return isinstance(value, list) and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)

    if not isinstance(frame, dict):
        return "a frame must be a JSON object"
    mouse, keyboard = frame.get("mouse"), frame.get("keyboard")
    if not isinstance(mouse, dict):
        return "missing object 'mouse'"
    if not (is_number(mouse.get("dx")) and is_number(mouse.get("dy"))):
        return "'mouse.dx' and 'mouse.dy' must be numbers"
    for axis in ("dx", "dy"):
        if abs(mouse[axis]) > MAX_MOUSE_DELTA_PX:
            return f"'mouse.{axis}' {mouse[axis]:.6g} is outside +-{MAX_MOUSE_DELTA_PX} pixels"
    if not (is_list_of(mouse.get("buttons"), int) and is_list_of(mouse.get("newButtons"), int)):
        return "'mouse.buttons' and 'mouse.newButtons' must be lists of integers"
    if not isinstance(keyboard, dict) or not is_list_of(keyboard.get("keys"), str):
        return "'keyboard.keys' must be a list of strings"
    hotbar = frame.get("hotbar")
    if not (isinstance(hotbar, int) and not isinstance(hotbar, bool) and 0 <= hotbar <= 8):
        return "'hotbar' must be an integer 0..8"
    return None


def vpt_to_env_actions(frames: Sequence[Mapping[str, Any]]) -> list[EnvAction]:
    """One env action per frame: keys through the keyboard table, camera from the
    mouse delta (0.15 degree per pixel; dy -> pitch, dx -> yaw), mouse buttons
    0/1/2 -> attack/use/pickItem, plus VPT's two repairs:

    Hotbar: scrolling the mouse wheel changes the slot but records no key, so a
    frame whose `hotbar` (0-based) differs from the previous frame's presses
    `hotbar.<slot+1>`. The slot before frame 0 counts as 0, the slot a fresh
    simulator starts in, so a recording that starts elsewhere selects it at frame 0.

    Attack: some recordings start with the attack button stuck down by the click
    that focused the game window. Rule (VPT's, exactly): if frame 0's `newButtons`
    is exactly [0], attack is stuck; while stuck, button 0 is dropped from
    `buttons` on every frame, even across releases; the first later frame whose
    `newButtons` holds 0 (a real press) ends it, and from that frame on button 0
    in `buttons` is attack=1. No other hold is repaired: once not stuck, a held
    button counts as pressed whether or not `newButtons` saw it start.
    """
    actions = []
    attack_is_stuck = False
    last_hotbar = 0
    for i, frame in enumerate(frames):
        mouse = frame["mouse"]
        if i == 0:
            attack_is_stuck = mouse["newButtons"] == [ATTACK_MOUSE_BUTTON]
        elif attack_is_stuck and ATTACK_MOUSE_BUTTON in mouse["newButtons"]:
            attack_is_stuck = False

        pressed = [KEY_TO_BUTTON[key.removeprefix(KEY_PREFIX)] for key in frame["keyboard"]["keys"]
                   if key.startswith(KEY_PREFIX) and key.removeprefix(KEY_PREFIX) in KEY_TO_BUTTON]
        pressed += [MOUSE_BUTTON_TO_BUTTON[button] for button in mouse["buttons"]
                    if button in MOUSE_BUTTON_TO_BUTTON and not (attack_is_stuck and button == ATTACK_MOUSE_BUTTON)]
        if frame["hotbar"] != last_hotbar:
            pressed.append(f"hotbar.{frame['hotbar'] + 1}")
        last_hotbar = frame["hotbar"]
        actions.append(make_action(pressed, camera=(pixels_to_degrees(mouse["dy"]), pixels_to_degrees(mouse["dx"]))))
    return actions


def recorded_keys(frame: Mapping[str, Any]) -> list[str]:
    """The frame's keys as keyboard-table names, in the recording's order (unknown keys left out)."""
    names = [key.removeprefix(KEY_PREFIX) for key in frame["keyboard"]["keys"] if key.startswith(KEY_PREFIX)]
    return [name for name in names if name in KEY_TO_BUTTON]


def text_actions(frames: Sequence[Mapping[str, Any]], actions: Sequence[Mapping[str, Any]],
                 profile: McProfile = CROSSAGENT) -> list[TextAction]:
    """Each frame's text action; keys keep the recording's order (what the profile writes of it is its business)."""
    return [TextAction.from_env_action(action, profile, recorded_keys(frame)) for frame, action in zip(frames, actions)]


def convert_vpt_file(path: str | Path, profile: McProfile = CROSSAGENT) -> list[dict[str, Any]]:
    """Per frame: {"frame": i, "env_action": {...}, "text_action": "Action: ..."} (JSON-ready)."""
    frames = read_vpt_jsonl(path)
    actions = vpt_to_env_actions(frames)
    return [
        {"frame": i, "env_action": action, "text_action": text.format(profile)}
        for i, (action, text) in enumerate(zip(actions, text_actions(frames, actions, profile)))
    ]


def env_actions_to_vpt(actions: Sequence[Mapping[str, Any]], profile: McProfile = CROSSAGENT) -> list[dict[str, Any]]:
    """Env actions as VPT-style JSON actions: the recording fields `vpt_to_env_actions` reads
    (`mouse.dx/dy/buttons/newButtons`, `keyboard.keys/newKeys`, `hotbar`), keys in the profile's order.

    The inverse of `vpt_to_env_actions` for cameras of whole 1/1000 pixels, with one exception
    VPT's own rule makes: a first action that presses attack as its only mouse button reads
    back as the stuck click of a focusing window, so attack is dropped there.
    """
    frames = []
    slot = 0
    held_buttons: list[int] = []
    held_keys: list[str] = []
    for action in actions:
        keys = [KEY_PREFIX + key for key in profile.env_key_order if action.get(KEY_TO_BUTTON[key], 0)]
        buttons = [number for number, button in MOUSE_BUTTON_TO_BUTTON.items() if action.get(button, 0)]
        slots = [i for i in range(9) if action.get(f"hotbar.{i + 1}", 0)]
        slot = slots[-1] if slots else slot  # as in the raw-token groups, the higher slot wins
        pitch, yaw = camera_of(action)
        frames.append({
            "mouse": {"dx": round(degrees_to_pixels(yaw), 3), "dy": round(degrees_to_pixels(pitch), 3),
                      "buttons": buttons, "newButtons": [b for b in buttons if b not in held_buttons]},
            "keyboard": {"keys": keys, "newKeys": [k for k in keys if k not in held_keys]},
            "hotbar": slot,
        })
        held_buttons, held_keys = buttons, keys
    return frames
