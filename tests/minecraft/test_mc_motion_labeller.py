import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossagent.actions.minecraft.env_action import make_action, pixels_to_degrees
from crossagent.actions.parse_error import ParseError
from crossagent.actions.minecraft.motion_labeller import (
    ATOMS,
    MotionSegment,
    format_motion,
    frame_motions,
    parse_motion,
    segment_motions,
)


def line(action, gui_open=False):
    return format_motion(frame_motions([action], [gui_open])[0])


@pytest.mark.parametrize("pressed, camera, expected", [
    ([], (0, 0), "Motion: no_op"),
    (["forward"], (0, 0), "Motion: move forward"),
    (["back", "right"], (0, 0), "Motion: move back and move right"),
    (["forward", "back"], (0, 0), "Motion: no_op"),
    (["forward", "sprint"], (0, 2.85), "Motion: move forward, sprint, turn right"),
    (["sprint", "sneak"], (0, 0), "Motion: sneak"),
    ([], (-1.0, -1.0), "Motion: turn left and up"),
    ([], (pixels_to_degrees(2), pixels_to_degrees(-2)), "Motion: no_op"),  # jitter inside the dead zone
    ([], (pixels_to_degrees(3), 0), "Motion: turn down"),
    (["attack"], (0, 0), "Motion: attack / mine"),
    (["attack", "use"], (0, 0), "Motion: attack / mine and use / place"),
    (["jump", "drop", "swapHands", "hotbar.4"], (0, 0), "Motion: jump, drop, swap, switch to hotbar 4"),
])
def test_frame_rules(pressed, camera, expected):
    assert line(make_action(pressed, camera=camera)) == expected


def test_gui_rules():
    action = make_action(["forward", "jump", "attack", "use"], camera=(-2, 3))
    assert line(action, gui_open=True) == "Motion: cursor move right and up, operate gui and choose"
    assert line(make_action(["ESC"]), gui_open=True) == "Motion: close gui"
    assert line(make_action(["ESC"]), gui_open=False) == "Motion: no_op"


def test_inventory_open_and_close_tracked_from_the_key():
    e, idle = make_action(["inventory"]), make_action()
    cursor = make_action(camera=(0, 3))
    labels = frame_motions([e, e, cursor, e, idle, cursor])
    assert [format_motion(label) for label in labels] == [
        "Motion: open inventory", "Motion: open inventory",  # a held key is one press
        "Motion: cursor move right",
        "Motion: close inventory", "Motion: no_op",
        "Motion: turn right",
    ]


def test_segments_are_runs_of_equal_motions():
    forward = make_action(["forward"])
    turning = make_action(["forward"], camera=(0, 1.5))
    assert segment_motions([forward, forward, forward, turning, make_action(), make_action()]) == [
        MotionSegment(0, 3, "Motion: move forward"),
        MotionSegment(3, 4, "Motion: move forward, turn right"),
        MotionSegment(4, 6, "Motion: no_op"),
    ]
    assert segment_motions([]) == []


def test_parse_is_lenient():
    assert parse_motion("Motion:  Turn Right and Down ,attack/mine") == {"turn right", "turn down", "attack / mine"}
    assert parse_motion("Skill: x\nMotion: switch to hotbar 1, 3") == {"switch to hotbar 1", "switch to hotbar 3"}
    assert parse_motion("Motion: no_op") == frozenset()
    assert parse_motion("Motion: move forward and move left, cursor move left and up") == {
        "move forward", "move left", "cursor move left", "cursor move up"}


@pytest.mark.parametrize("text", ["", "Motion:", "Motion: fly up", "Motion: turn sideways", "Motion: ,"])
def test_parse_errors(text):
    assert isinstance(parse_motion(text), ParseError)


@given(st.sets(st.sampled_from(ATOMS)))
def test_format_parse_round_trip(atoms):
    assert parse_motion(format_motion(atoms)) == atoms


@given(st.text())
def test_parser_never_raises(text):
    assert isinstance(parse_motion(text), (frozenset, ParseError))
