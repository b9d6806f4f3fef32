import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossagent.actions.minecraft.env_action import (
    BUTTONS,
    KEY_TO_BUTTON,
    actions_equal,
    is_null,
    make_action,
    null_action,
    pixels_to_degrees,
    pressed_buttons,
)
from crossagent.actions.parse_error import ParseError
from crossagent.actions.minecraft.text_action import TextAction, parse_text_action


def env(text: str):
    parsed = parse_text_action(text)
    assert isinstance(parsed, TextAction), parsed
    return parsed.to_env_action()


def test_worked_example():
    action = env("Action: move(19, 0) and press(w) and click(left)")
    assert pressed_buttons(action) == ("forward", "attack")
    assert action["camera"] == [0.0, 2.85]


def test_null_action_format_and_no_op():
    assert TextAction().format() == "Action: move(0, 0) and press()"
    assert TextAction.from_env_action(null_action()).format() == "Action: move(0, 0) and press()"
    assert is_null(env("Action: move(0, 0) and press()"))
    assert is_null(env("Action: no_op"))
    assert is_null(env("Action: move(5, 3) and press(w) no_op"))


def test_canonical_order():
    action = make_action(["use", "attack", "sprint", "jump", "forward", "hotbar.3"], camera=(-0.3, 1.5))
    assert TextAction.from_env_action(action).format() == (
        "Action: move(10, -2) and press(w, space, 3, left.control) and click(left) and click(right)"
    )


@pytest.mark.parametrize("text", [
    "Action: move('19', \"0\") and press(w) and click(left)",
    "Action:move( +19 ,0.0 )and press( 'w' )and click( 'left' )",
    "Action: click(left) and press(W) and move(19.0, -0.0)",
    "Action: press(key.keyboard.w) and move(19, 0) and click(left).",
    "Thought: the tree is to the right.\nAction: move(19, 0) and press(w) and click(left)<|im_end|>",
])
def test_lenient_spellings(text):
    assert actions_equal(env(text), make_action(["forward", "attack"], camera=(0, 2.85)))


def test_decimal_pixels():
    assert env("Action: move(1.5, -2.5) and press()")["camera"] == [pytest.approx(-0.375), pytest.approx(0.225)]


def test_last_action_line_wins():
    text = "Action: move(1, 1) and press(s)\nMotion: move forward\nAction: move(0, 0) and press(w)"
    assert pressed_buttons(env(text)) == ("forward",)


def test_text_without_tag_is_read_as_the_action():
    assert pressed_buttons(env("press(space) and move(0, 0)")) == ("jump",)


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("Action:", "empty"),
    ("Action: walk forward across the terrain", "no move"),
    ("Action: move(1) and press()", "two numbers"),
    ("Action: move(a, b) and press()", "two numbers"),
    ("Action: move(1, 2", "unclosed"),
    ("Action: move(1, 2) and move(3, 4)", "more than one move"),
    ("Action: press(x)", "unknown key"),
    ("Action: click(back)", "unknown mouse button"),
    ("Action: move(1, 2) and jump", "unexpected text"),
])
def test_errors_are_structured(text, reason):
    parsed = parse_text_action(text)
    assert isinstance(parsed, ParseError)
    assert reason in parsed.reason
    assert parsed.text == text


# Cameras that survive whole pixels: integer pixel moves converted to degrees.
pixel_moves = st.integers(min_value=-3000, max_value=3000)
env_actions = st.builds(
    lambda pressed, dy, dx: make_action(pressed, camera=(pixels_to_degrees(dy), pixels_to_degrees(dx))),
    st.sets(st.sampled_from(BUTTONS)), pixel_moves, pixel_moves,
)


@given(env_actions)
def test_format_parse_round_trip(action):
    text = TextAction.from_env_action(action).format()
    parsed = parse_text_action(text)
    assert isinstance(parsed, TextAction)
    assert parsed.format() == text
    assert actions_equal(parsed.to_env_action(), action, atol=0.0)


@given(st.integers(-5000, 5000), st.integers(-5000, 5000),
       st.lists(st.sampled_from(list(KEY_TO_BUTTON))), st.lists(st.sampled_from(["left", "right", "middle"])))
def test_text_to_env_to_text_round_trip(dx, dy, keys, clicks):
    action = TextAction(dx=dx, dy=dy, keys=tuple(keys), clicks=tuple(clicks))
    back = TextAction.from_env_action(action.to_env_action())
    assert back.format() == action.format()
    assert set(back.keys) == set(action.keys)


def test_keys_keep_the_order_given_without_repeats():
    assert TextAction(keys=("space", "w", "space")).keys == ("space", "w")


@given(st.text())
def test_parser_never_raises_on_any_text(text):
    assert isinstance(parse_text_action(text), (TextAction, ParseError))


@given(st.text(alphabet="moveprsclick(),.'\"-+0123456789 andw\nAction:no_p", max_size=80))
def test_parser_never_raises_on_near_misses(text):
    assert isinstance(parse_text_action(text), (TextAction, ParseError))
