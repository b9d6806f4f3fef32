import pytest
from hypothesis import given
from hypothesis import strategies as st

import dataclasses

from crossagent.actions.minecraft.coa import ChainOfAction, format_chain_of_action, parse_chain_of_action
from crossagent.actions.minecraft.profile import CROSSAGENT, OPENHA
from crossagent.actions.parse_error import ParseError
from crossagent.actions.minecraft.grounding import GroundingAction
from crossagent.actions.minecraft.text_action import TextAction

FULL = """Skill: chop down trees
Grounding: Mine <|object_ref_start|>oak log<|object_ref_end|><|point_start|>(412,530)<|point_end|>
Motion: turn right, attack / mine
Action: move(19, 0) and press(w) and click(left)"""


def test_full_chain():
    chain = parse_chain_of_action(FULL)
    assert list(chain.levels) == ["skill", "grounding", "motion", "action"]
    assert chain.levels["skill"] == "chop down trees"
    assert chain.levels["grounding"] == GroundingAction("Mine", "oak log", ((412, 530),))
    assert chain.levels["motion"] == {"turn right", "attack / mine"}
    assert chain.executed_level == "action"
    assert chain.executed == TextAction(dx=19, keys=("w",), clicks=("left",))
    assert chain.line_counts == {"skill": 1, "grounding": 1, "motion": 1, "action": 1}


@pytest.mark.parametrize("text, executed", [
    ("Skill: craft a wooden pickaxe", "skill"),
    ("Skill: collect wood\nGrounding: Explore", "grounding"),
    ("I will look around.\nMotion: turn left", "motion"),
    ("Grounding: Kill <|point_start|>(1,2)<|point_end|>\nAction: no_op", "action"),
])
def test_executed_level_is_the_most_concrete_present(text, executed):
    assert parse_chain_of_action(text).executed_level == executed


def test_last_action_wins_and_is_counted():
    chain = parse_chain_of_action("Action: move(1, 0) and press()\nthinking...\n  Action: move(0, 0) and press(space)")
    assert chain.executed == TextAction(keys=("space",))
    assert chain.line_counts == {"action": 2}


def test_bad_level_content_is_an_error_not_an_exception():
    chain = parse_chain_of_action("Grounding: Dance\nAction: fly away")
    assert isinstance(chain.levels["grounding"], ParseError)
    assert chain.executed_level == "action"
    assert isinstance(chain.executed, ParseError)


def test_reply_without_levels():
    chain = parse_chain_of_action("I am not sure what to do.")
    assert chain == ChainOfAction()
    assert chain.executed_level is None and chain.executed is None


LINES = {"motion": "Motion: turn right, attack / mine", "skill": "Skill: chop down trees",
         "action": "Action: move(19, 0) and press(w) and click(left) "}


def test_line_layout():
    assert format_chain_of_action(LINES, OPENHA) == (
        "Skill: chop down trees\nMotion: turn right, attack / mine\nAction: move(19, 0) and press(w) and click(left) ")


def test_tag_wrapped_layout_round_trip():
    tags = dataclasses.replace(OPENHA, coa_layout="tags")
    text = format_chain_of_action(LINES, tags)
    assert text == ("<skill>chop down trees</skill>\n<motion>turn right, attack / mine</motion>\n"
                    "<raw>move(19, 0) and press(w) and click(left)</raw>")
    assert parse_chain_of_action(text) == parse_chain_of_action(format_chain_of_action(LINES, CROSSAGENT))


def test_tags_read_in_any_spacing_and_mixed_with_lines():
    chain = parse_chain_of_action("<grounding> Kill <|point_start|>(1,2)<|point_end|> </grounding><motion> move forward,"
                                  "\n turn right and up</motion>Action: no_op")
    assert chain.levels["grounding"] == GroundingAction("Kill", None, ((1, 2),))
    assert chain.levels["motion"] == {"move forward", "turn right", "turn up"}
    assert chain.executed_level == "action"


def test_format_refuses_wrong_lines():
    with pytest.raises(ValueError, match="must start with `Motion:`"):
        format_chain_of_action({"motion": "Action: no_op"})
    with pytest.raises(ValueError, match="unknown CoA levels"):
        format_chain_of_action({"latent": "Latent: 3"})


@given(st.text())
def test_never_raises(text):
    assert isinstance(parse_chain_of_action(text), ChainOfAction)


@given(st.lists(st.sampled_from(["Skill:", "Grounding:", "Motion:", "Action:", " move(1,2)", " Mine", "\n", " no_op",
                                 "<|point_start|>(3,4)<|point_end|>", " turn left", " press(w)", ","]), max_size=20))
def test_never_raises_on_tag_soup(parts):
    assert isinstance(parse_chain_of_action("".join(parts)), ChainOfAction)
