"""Examples are kept where the evaluated policy is asked: an upper level's reply covers the steps its
executor runs (up to the re-query interval), an `Action:` reply is asked every step."""

from crossagent.actions.grounding import Grounding
from crossagent.actions.motion import Motion
from crossagent.actions.raw import RawAction
from crossagent.actions.skill import Skill
from crossagent.data.builders import StepReply, asked_steps

WOOD, TABLE = Skill("collect wood"), Skill("place table")


def skills(*sentences_and_ends):
    return [StepReply("skill", skill, ends) for skill, ends in sentences_and_ends]


def test_a_skill_is_asked_when_it_starts_every_k_steps_while_it_runs_and_after_its_event():
    replies = skills(*[(WOOD, False)] * 8, (WOOD, True), (TABLE, False), (TABLE, True), (WOOD, False))
    assert asked_steps(replies, 4) == [True, False, False, False, True, False, False, False, True,
                                       True, False, True]


def test_the_same_skill_again_after_its_event_is_a_new_question():
    replies = skills((WOOD, True), (WOOD, False), (WOOD, True), (WOOD, False))
    assert asked_steps(replies, 4) == [True, True, False, True]


def test_a_motion_covers_its_repeats_and_a_grounding_its_target_as_the_point_moves():
    replies = [StepReply("motion", Motion("move_left", 3), False), StepReply("motion", Motion("move_left", 2), False),
               StepReply("motion", Motion("move_left", 1), True),
               StepReply("grounding", Grounding("collect", (500, 300), "tree"), False),
               StepReply("grounding", Grounding("collect", (500, 420), "tree"), False),
               StepReply("grounding", Grounding("attack", (500, 420), "zombie"), False)]
    assert asked_steps(replies, 4) == [True, False, False, True, False, True]


def test_raw_replies_are_asked_every_step_and_no_interval_asks_every_step():
    raw = [StepReply("raw", RawAction("move_left"), True)] * 3
    assert asked_steps(raw, 4) == [True, True, True]
    assert asked_steps(skills(*[(WOOD, False)] * 3), None) == [True, True, True]
    assert asked_steps(skills(*[(WOOD, False)] * 3), 1) == [True, True, True]
