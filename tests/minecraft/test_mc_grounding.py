import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossagent.actions.parse_error import ParseError
from crossagent.actions.minecraft.grounding import (
    VERBS,
    VERBS_WITHOUT_POINT,
    GroundingAction,
    parse_grounding,
    pixel_to_point,
    point_to_pixel,
)

EXAMPLE = "Grounding: Mine <|object_ref_start|>oak log<|object_ref_end|><|point_start|>(412,530)<|point_end|>"


def test_example_parses_and_formats_back():
    parsed = parse_grounding(EXAMPLE)
    assert parsed == GroundingAction("Mine", "oak log", ((412, 530),))
    assert parsed.format() == EXAMPLE


def test_optional_label_and_pointless_verbs():
    assert parse_grounding("Grounding: Kill <|point_start|>(1,999)<|point_end|>") == GroundingAction("Kill", None, ((1, 999),))
    assert parse_grounding("Grounding: Explore") == GroundingAction("Explore")
    assert parse_grounding("Grounding: no-op") == GroundingAction("no-op")
    assert GroundingAction("Approach", points=((5, 6),)).format() == "Grounding: Approach <|point_start|>(5,6)<|point_end|>"


@pytest.mark.parametrize("text, expected", [
    ("Grounding:   right-click <|object_ref_start|> crafting table <|object_ref_end|> <|point_start|>( 500 , 20.4 )<|point_end|>",
     GroundingAction("right click", "crafting table", ((500, 20),))),
    ("Thought: a cow.\nGrounding: KILL <|point_start|>300,301<|point_end|>\nAction: no_op", GroundingAction("Kill", None, ((300, 301),))),
    ("Grounding: move to <|point_start|>(0,0)<|point_end|>", GroundingAction("move to", None, ((0, 0),))),
    ("Grounding: Explore <|point_start|>(3,4)<|point_end|>", GroundingAction("Explore")),  # point ignored
    ("Grounding: no_op", GroundingAction("no-op")),
])
def test_lenient_parse(text, expected):
    assert parse_grounding(text) == expected


@pytest.mark.parametrize("text, reason", [
    ("Grounding: Mine", "needs a point"),
    ("Grounding: Use", "needs a point"),
    ("Grounding: Kill <|point_start|>(1,2),3<|point_end|>", "not `VERB"),
    ("Grounding: Kill <|box_start|>(1,2)<|box_end|>", "not `VERB"),
    ("Grounding: Mine <|box_start|>(1,2),(3,1000)<|box_end|>", "outside"),
    ("Grounding: Dance <|point_start|>(1,2)<|point_end|>", "unknown grounding verb"),
    ("Grounding: Mine <|point_start|>(1000,2)<|point_end|>", "outside"),
    ("Grounding: Mine <|point_start|>(1,2)", "not `VERB"),
    ("Grounding: Mine <|point_start|>(1" + "9" * 400 + ",2)<|point_end|>", "outside"),
])
def test_parse_errors(text, reason):
    parsed = parse_grounding(text)
    assert isinstance(parsed, ParseError) and reason in parsed.reason


def test_new_verbs_and_their_locations():
    assert parse_grounding("Grounding: Use <|point_start|>(10,20)<|point_end|>") == GroundingAction("Use", None, ((10, 20),))
    assert parse_grounding("Grounding: interact <|object_ref_start|>door<|object_ref_end|>"
                           "<|point_start|>(5,6)<|point_end|>") == GroundingAction("Interact", "door", ((5, 6),))
    assert parse_grounding("Grounding: move camera <|point_start|>(1,2)<|point_end|>").verb == "move_camera"
    # Craft and Switch may name their object by the label alone.
    assert parse_grounding("Grounding: Craft <|object_ref_start|>stick<|object_ref_end|>") == GroundingAction("Craft", "stick")
    assert GroundingAction("Switch", "stone axe").format() == "Grounding: Switch <|object_ref_start|>stone axe<|object_ref_end|>"
    with pytest.raises(ValueError, match="needs a point"):
        GroundingAction("Interact")


def test_several_points_and_their_centroid():
    expected = GroundingAction("Kill", "sheep", ((100, 200), (300, 401)))
    text = "Grounding: Kill <|object_ref_start|>sheep<|object_ref_end|><|point_start|>(100,200),(300,401)<|point_end|>"
    assert expected.format() == text
    assert parse_grounding(text) == expected
    # One span per point reads the same.
    assert parse_grounding("Grounding: Kill <|object_ref_start|>sheep<|object_ref_end|><|point_start|>(100,200)"
                           "<|point_end|> <|point_start|>(300, 401)<|point_end|>") == expected
    assert expected.target == (200, 300)  # (200, 300.5): the half rounds to even


def test_box_and_its_centroid():
    text = "Grounding: Approach <|object_ref_start|>village<|object_ref_end|><|box_start|>(100,200),(301,400)<|box_end|>"
    parsed = parse_grounding(text)
    assert parsed == GroundingAction("Approach", "village", box=(100, 200, 301, 400))
    assert parsed.format() == text
    assert parsed.target == (200, 300)  # (200.5, 300): the half rounds to even
    # Corners in any order are read as the same box.
    assert parse_grounding("Grounding: Approach <|box_start|>(301,400),(100,200)<|box_end|>").box == (100, 200, 301, 400)
    with pytest.raises(ValueError, match="points or a box"):
        GroundingAction("Mine", points=((1, 2),), box=(1, 2, 3, 4))


def test_point_to_pixel_is_the_spec_formula():
    assert point_to_pixel((412, 530), 640, 360) == (264, 191)  # ceil(263.68), ceil(190.8)
    assert point_to_pixel((0, 0), 640, 360) == (0, 0)
    assert point_to_pixel((500, 500), 1000, 1000) == (500, 500)


coordinates = st.integers(0, 999)


def located(verb, label, points, box, use_box):
    if verb in VERBS_WITHOUT_POINT:
        return GroundingAction(verb, label)
    if use_box:
        (x1, y1), (x2, y2) = box
        return GroundingAction(verb, label, box=(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)))
    return GroundingAction(verb, label, points=tuple(points))


actions = st.builds(
    located,
    st.sampled_from(VERBS),
    st.one_of(st.none(), st.text(alphabet="abcdefghij klm_", min_size=1).map(str.strip).filter(bool)),
    st.lists(st.tuples(coordinates, coordinates), min_size=1, max_size=4),
    st.tuples(st.tuples(coordinates, coordinates), st.tuples(coordinates, coordinates)),
    st.booleans(),
)


@given(actions)
def test_format_parse_round_trip(action):
    assert parse_grounding(action.format()) == action


@given(st.integers(0, 999), st.integers(500, 4000))
def test_point_pixel_point_within_one(x, size):
    back = pixel_to_point(point_to_pixel((x, x), size, size), size, size)
    assert abs(back[0] - x) <= 1


@given(st.data(), st.integers(1, 2000))
def test_pixel_point_pixel_within_one(data, size):
    pixel = data.draw(st.integers(0, size - 1))
    back = point_to_pixel(pixel_to_point((pixel, pixel), size, size), size, size)[0]
    assert abs(back - pixel) <= 1
    if size <= 1000:
        assert back == pixel


@given(st.text())
def test_parser_never_raises(text):
    assert isinstance(parse_grounding(text), (GroundingAction, ParseError))
