import json

import pytest

from crossagent.actions.minecraft.env_action import (
    BUTTONS,
    DEGREES_PER_PIXEL,
    KEY_TO_BUTTON,
    MOUSE_BUTTON_TO_BUTTON,
    actions_equal,
    degrees_to_pixels,
    is_null,
    make_action,
    null_action,
    pixels_to_degrees,
    pressed_buttons,
)


def test_buttons_follow_the_spec_order():
    assert BUTTONS[:11] == ("forward", "back", "left", "right", "jump", "sneak", "sprint",
                            "attack", "use", "drop", "inventory")
    assert BUTTONS[11:20] == tuple(f"hotbar.{i}" for i in range(1, 10))
    assert BUTTONS[20:] == ("ESC", "swapHands", "pickItem")


def test_null_action_is_null_and_json_ready():
    action = null_action()
    assert is_null(action)
    assert set(action) == set(BUTTONS) | {"camera"}
    assert json.loads(json.dumps(action)) == action


def test_key_and_mouse_tables():
    assert KEY_TO_BUTTON["w"] == "forward"
    assert KEY_TO_BUTTON["left.shift"] == "sneak"
    assert KEY_TO_BUTTON["left.control"] == "sprint"
    assert KEY_TO_BUTTON["9"] == "hotbar.9"
    assert KEY_TO_BUTTON["escape"] == "ESC"
    assert KEY_TO_BUTTON["f"] == "swapHands"
    assert MOUSE_BUTTON_TO_BUTTON == {0: "attack", 1: "use", 2: "pickItem"}


def test_pixel_degree_conversion():
    assert DEGREES_PER_PIXEL == pytest.approx(0.15)
    assert pixels_to_degrees(19) == 2.85
    assert pixels_to_degrees(-2400) == -360.0
    assert degrees_to_pixels(pixels_to_degrees(37)) == pytest.approx(37)


def test_make_action_and_compare():
    action = make_action(["forward", "attack"], camera=(1, -2))
    assert pressed_buttons(action) == ("forward", "attack")
    assert action["camera"] == [1.0, -2.0]
    assert not is_null(action)
    assert actions_equal(action, make_action(["attack", "forward"], camera=(1 + 1e-12, -2)))
    assert not actions_equal(action, make_action(["forward"], camera=(1, -2)))
    assert not actions_equal(action, make_action(["forward", "attack"], camera=(1.1, -2)))
    # A missing button counts as released.
    assert actions_equal({"camera": [0, 0]}, null_action())
    with pytest.raises(ValueError):
        make_action(["fly"])
