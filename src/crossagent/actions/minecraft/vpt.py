"""VPT contractor recordings (spec section 8): one JSON object per 20 Hz frame -> env actions.

The conversion is the one VPT's data loader does (and MineStudio/OpenHA copy), so
actions we derive match the actions their models were trained on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crossagent.actions.minecraft.env_action import (
    KEY_TO_BUTTON,
    MOUSE_BUTTON_TO_BUTTON,
    EnvAction,
    make_action,
    pixels_to_degrees,
)
from crossagent.actions.minecraft.text_action import TextAction

KEY_PREFIX = "key.keyboard."
ATTACK_MOUSE_BUTTON = 0


class VptFormatError(ValueError):
    """A recording line that is not a VPT frame; the message names the file and line."""


def read_vpt_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The frames of a VPT jsonl file, checked for the fields the conversion reads.
    Blank lines are skipped."""
    frames = []
    with open(path, encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                frame = json.loads(line)
            except json.JSONDecodeError as error:
                raise VptFormatError(f"{path}:{line_number}: not valid JSON ({error.msg})") from None
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


def convert_vpt_file(path: str | Path) -> list[dict[str, Any]]:
    """Per frame: {"frame": i, "env_action": {...}, "text_action": "Action: ..."} (JSON-ready)."""
    actions = vpt_to_env_actions(read_vpt_jsonl(path))
    return [
        {"frame": i, "env_action": action, "text_action": TextAction.from_env_action(action).format()}
        for i, action in enumerate(actions)
    ]
