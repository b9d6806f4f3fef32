"""The env action: the Minecraft simulator's primitive action (spec section 1).

A plain dict, so it serialises to JSON as is: one entry per button (0 or 1) and
`camera = [pitch_deg, yaw_deg]` (pitch > 0 looks down, yaw > 0 turns right).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

EnvAction = dict[str, Any]

# The spec's order; the three extras come last because a simulator may ignore them.
CORE_BUTTONS: tuple[str, ...] = (
    "forward", "back", "left", "right", "jump", "sneak", "sprint",
    "attack", "use", "drop", "inventory",
    *(f"hotbar.{i}" for i in range(1, 10)),
)
EXTRA_BUTTONS: tuple[str, ...] = ("ESC", "swapHands", "pickItem")
BUTTONS: tuple[str, ...] = CORE_BUTTONS + EXTRA_BUTTONS

# Key names as human players' recordings and text actions write them (VPT writes
# them with a `key.keyboard.` prefix). The order is the canonical `press(...)` order.
KEY_TO_BUTTON: dict[str, str] = {
    "w": "forward", "s": "back", "a": "left", "d": "right",
    "space": "jump", "e": "inventory", "q": "drop",
    **{str(i): f"hotbar.{i}" for i in range(1, 10)},
    "left.shift": "sneak", "left.control": "sprint",
    "escape": "ESC", "f": "swapHands",
}
BUTTON_TO_KEY: dict[str, str] = {button: key for key, button in KEY_TO_BUTTON.items()}

# Mouse button numbers as VPT records them.
MOUSE_BUTTON_TO_BUTTON: dict[int, str] = {0: "attack", 1: "use", 2: "pickItem"}

# MineRL's mouse sensitivity: 2400 pixels of mouse travel turn the view 360 degrees.
DEGREES_PER_PIXEL = 360 / 2400


def pixels_to_degrees(pixels: float) -> float:
    # Multiply before dividing so integer pixels give the correctly rounded float
    # (19 px -> 2.85 exactly as Python prints it).
    return pixels * 360 / 2400


def degrees_to_pixels(degrees: float) -> float:
    return degrees * 2400 / 360


def null_action() -> EnvAction:
    action: EnvAction = {button: 0 for button in BUTTONS}
    action["camera"] = [0.0, 0.0]
    return action


def make_action(pressed: Iterable[str] = (), camera: Sequence[float] = (0.0, 0.0)) -> EnvAction:
    """An env action with the named buttons pressed and the given camera move."""
    action = null_action()
    for button in pressed:
        if button not in action or button == "camera":
            raise ValueError(f"unknown button {button!r}")
        action[button] = 1
    action["camera"] = [float(camera[0]), float(camera[1])]
    return action


def pressed_buttons(action: Mapping[str, Any]) -> tuple[str, ...]:
    """The pressed buttons in BUTTONS order; a missing button counts as released."""
    return tuple(button for button in BUTTONS if action.get(button, 0))


def camera_of(action: Mapping[str, Any]) -> tuple[float, float]:
    pitch, yaw = action.get("camera", (0.0, 0.0))
    return float(pitch), float(yaw)


def actions_equal(a: Mapping[str, Any], b: Mapping[str, Any], atol: float = 1e-9) -> bool:
    """Same buttons pressed and cameras within `atol` degrees."""
    if pressed_buttons(a) != pressed_buttons(b):
        return False
    return all(math.isclose(x, y, rel_tol=0.0, abs_tol=atol) for x, y in zip(camera_of(a), camera_of(b)))


def is_null(action: Mapping[str, Any]) -> bool:
    return actions_equal(action, null_action(), atol=0.0)
