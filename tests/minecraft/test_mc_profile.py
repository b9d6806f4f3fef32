"""The two profiles on worked examples written from minecraft-formats.md sections 2 and 3."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossagent.actions.minecraft.env_action import (
    BUTTONS,
    actions_equal,
    is_null,
    make_action,
    null_action,
    pixels_to_degrees,
    pressed_buttons,
)
from crossagent.actions.minecraft.profile import CROSSAGENT, OPENHA, McProfile, profile_named
from crossagent.actions.minecraft.text_action import (
    TextAction,
    format_action_chunk,
    parse_action_chunk,
    parse_text_action,
)
from crossagent.actions.parse_error import ParseError


def text_of(action, profile, recorded_keys=()):
    return TextAction.from_env_action(action, profile, recorded_keys).format(profile)


def test_null_action():
    assert text_of(null_action(), OPENHA) == "Action: no_op "
    assert text_of(null_action(), CROSSAGENT) == "Action: move(0, 0) and press()"
    always = dataclasses.replace(OPENHA, write_empty_parts=True)  # the released "reserved camera / keyboard" option
    assert text_of(null_action(), always) == "Action: move(0, 0) and press() "


def test_spec_worked_example_in_both_profiles():
    action = make_action(["forward", "attack"], camera=(0, 2.85))
    assert text_of(action, OPENHA) == "Action: move(19, 0) and press(w) and click(left) "
    assert text_of(action, CROSSAGENT) == "Action: move(19, 0) and press(w) and click(left)"


def test_empty_parts_are_left_out_one_by_one():
    assert text_of(make_action(["attack"]), OPENHA) == "Action: click(left) "
    assert text_of(make_action([], camera=(-0.3, 0)), OPENHA) == "Action: move(0, -2) "
    assert text_of(make_action(["jump"]), OPENHA) == "Action: press(space) "


def test_env_action_key_order():
    action = make_action(["jump", "forward", "hotbar.3", "sprint", "ESC", "back", "drop", "inventory"])
    # The released order: escape, s, q, w, 1..9, e, space, a, d, left.shift, left.control, f.
    assert text_of(action, OPENHA) == "Action: press(escape, s, q, w, 3, e, space, left.control) "
    # Ours: the keyboard table's order.
    assert text_of(action, CROSSAGENT) == "Action: move(0, 0) and press(w, s, space, e, q, 3, left.control, escape)"


def test_recorded_key_order_is_kept_by_openha_only():
    action = make_action(["forward", "jump", "sprint"])
    recorded = ["space", "left.control", "w"]
    assert text_of(action, OPENHA, recorded) == "Action: press(space, left.control, w) "
    assert text_of(action, CROSSAGENT, recorded) == "Action: move(0, 0) and press(w, space, left.control)"


@pytest.mark.parametrize("pixels, openha, crossagent", [
    (2.5, 2, 3),  # a half: to even / away from zero
    (3.5, 4, 4),
    (-2.5, -2, -3),
    (2.5004, 2, 3),  # 2.500 after rounding to 3 decimals, then to even
    (2.4996, 2, 2),  # 2.500 too: to even gives 2
    (19.000000000000004, 19, 19),  # float noise of 2.85 degrees
])
def test_pixel_rounding(pixels, openha, crossagent):
    action = make_action([], camera=(0, pixels_to_degrees(pixels)))
    assert TextAction.from_env_action(action, OPENHA).dx == openha
    assert TextAction.from_env_action(action, CROSSAGENT).dx == crossagent


def test_decimal_precision_option():
    two_decimals = dataclasses.replace(OPENHA, decimals=2)
    action = make_action([], camera=(pixels_to_degrees(-0.125), pixels_to_degrees(19.123456)))
    assert text_of(action, two_decimals) == "Action: move(19.12, -0.12) "  # -0.125: half to even
    assert text_of(action, dataclasses.replace(CROSSAGENT, decimals=2)) == "Action: move(19.12, -0.13) and press()"


def test_camera_scale_option():
    half = dataclasses.replace(OPENHA, camera_scale=0.5)
    action = make_action([], camera=(0, pixels_to_degrees(20)))
    assert text_of(action, half) == "Action: move(10, 0) "
    parsed = parse_text_action("Action: move(10, 0) ", half)
    assert parsed.to_env_action(half)["camera"] == [0.0, 3.0]  # 20 pixels
    assert parsed.to_env_action(OPENHA)["camera"] == [0.0, 1.5]  # the same text read unscaled: 10 pixels


def test_key_renaming_option():
    renamed = dataclasses.replace(OPENHA, key_names={"left.control": "ctrl", "left.shift": "shift"})
    action = make_action(["forward", "sprint"])
    assert text_of(action, renamed) == "Action: press(w, ctrl) "
    assert pressed_buttons(parse_text_action("Action: press(CTRL, w)", renamed).to_env_action()) == ("forward", "sprint")
    assert pressed_buttons(parse_text_action("Action: press(left.control)", renamed).to_env_action()) == ("sprint",)
    assert isinstance(parse_text_action("Action: press(ctrl)", OPENHA), ParseError)


def test_action_chunks():
    actions = [TextAction(keys=("w",)), TextAction(dx=-20, clicks=("left",)), TextAction()]
    text = format_action_chunk(actions, OPENHA)
    assert text == "Action: press(w) \nAction: move(-20, 0) and click(left) \nAction: no_op "
    assert parse_action_chunk(text, OPENHA) == tuple(actions)
    assert isinstance(parse_action_chunk("Action: press(w)\nAction: fly", OPENHA), ParseError)
    assert isinstance(parse_action_chunk("no actions here"), ParseError)
    with pytest.raises(ValueError):
        format_action_chunk([])


@pytest.mark.parametrize("text", [
    "Action: no_op ", "Action: move(0, 0) and press() ", "Action: move(0, 0) and press()", "Action: no_op",
])
def test_parsers_read_both_null_forms(text):
    assert is_null(parse_text_action(text, OPENHA).to_env_action())
    assert is_null(parse_text_action(text, CROSSAGENT).to_env_action())


pixel_moves = st.integers(min_value=-3000, max_value=3000)
env_actions = st.builds(
    lambda pressed, dy, dx: make_action(pressed, camera=(pixels_to_degrees(dy), pixels_to_degrees(dx))),
    st.sets(st.sampled_from(BUTTONS)), pixel_moves, pixel_moves,
)


@given(env_actions, st.sampled_from([OPENHA, CROSSAGENT]))
def test_round_trip_in_every_profile(action, profile):
    text = text_of(action, profile)
    parsed = parse_text_action(text, profile)
    assert parsed.format(profile) == text
    assert actions_equal(parsed.to_env_action(profile), action, atol=0.0)


def test_profiles_by_name_and_bad_settings():
    assert profile_named("openha") is OPENHA and profile_named("crossagent") is CROSSAGENT
    with pytest.raises(ValueError, match="unknown profile 'jarvis'"):
        profile_named("jarvis")
    with pytest.raises(ValueError, match="pixel rounding"):
        dataclasses.replace(OPENHA, pixel_rounding="up")
    with pytest.raises(ValueError, match="every key"):
        dataclasses.replace(OPENHA, env_key_order=("w",))
    with pytest.raises(ValueError, match="unknown keys"):
        dataclasses.replace(OPENHA, key_names={"ctrl": "c"})
    with pytest.raises(ValueError, match="CoA layout"):
        dataclasses.replace(OPENHA, coa_layout="xml")
    assert isinstance(OPENHA, McProfile)
