"""Every level's grammar: canonical round trips, lenient input, garbage never raises."""

from hypothesis import given, settings
from hypothesis import strategies as st

from crossagent.actions import grounding, motion, raw, skill
from crossagent.actions.chain import format_reply, parse_reply
from crossagent.actions.parse_error import ParseError
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.crafter_vocabulary import VOCABULARY

raw_actions = st.sampled_from(ACTION_NAMES).map(raw.RawAction)
motions = st.builds(motion.Motion, st.sampled_from(ACTION_NAMES), st.integers(1, motion.MAX_REPEAT))
points = st.tuples(st.integers(0, 999), st.integers(0, 999))
labels = st.none() | st.sampled_from(["tree", "zombie", "water", "iron ore", "crafting table"])
verbs = VOCABULARY.grounding
groundings = st.one_of(
    st.builds(grounding.Grounding, st.sampled_from([v for v in verbs.verbs if v not in verbs.verbs_without_point]),
              points, labels),
    st.builds(grounding.Grounding, st.sampled_from(verbs.verbs_without_point), st.none(), labels),
)
skills = st.sampled_from(VOCABULARY.skill.sentences).map(skill.Skill)
MODULES = {"raw": raw, "motion": motion, "grounding": grounding, "skill": skill}


def body(module, action) -> str:
    return module.to_text(action).removeprefix(module.TAG)


@given(raw_actions)
def test_raw_round_trips(action):
    assert raw.parse(body(raw, action)) == action


@given(motions)
def test_motion_round_trips(action):
    assert motion.parse(body(motion, action)) == action


@given(groundings)
def test_grounding_round_trips(action):
    assert grounding.parse(body(grounding, action)) == action


@given(skills)
def test_skill_round_trips(action):
    assert skill.parse(body(skill, action)) == action


@given(st.fixed_dictionaries({}, optional={"skill": skills, "grounding": groundings, "motion": motions, "raw": raw_actions}))
def test_chain_round_trips(actions):
    reply = parse_reply(format_reply(actions))
    assert reply.actions == actions and not reply.errors


def test_lenient_inputs_reach_the_canonical_form():
    assert raw.parse(" Move Left ") == raw.RawAction("move_left")
    assert motion.parse("Move Left x3") == motion.Motion("move_left", 3)
    assert motion.parse("move up 4 times.") == motion.Motion("move_up", 4)
    assert motion.parse("noop") == motion.Motion("noop", 1)
    assert skill.parse("Chop down a tree.") == skill.Skill("collect wood")
    assert skill.parse("craft a wooden pickaxe") == skill.Skill("make wood pickaxe")
    assert skill.parse("Kill the zombies!") == skill.Skill("defeat zombie")
    assert grounding.parse(" Mine <|object_ref_start|> tree <|object_ref_end|> <|point_start|>( 412 , 530 )<|point_end|>") \
        == grounding.Grounding("collect", (412, 530), "tree")


def test_malformed_lines_give_reasons():
    assert "unknown primitive action 'jump'" in raw.parse("jump").reason
    assert "motion count 0 is not in 1..20" in motion.parse("move left 0").reason
    assert "unknown motion 'fly'" in motion.parse("fly").reason
    assert "needs a point" in grounding.parse("attack").reason
    assert "takes no point" in grounding.parse("explore <|point_start|>(1,2)<|point_end|>").reason
    assert "outside the 0..999" in grounding.parse("attack <|point_start|>(1000,2)<|point_end|>").reason
    assert "unknown grounding verb 'dance'" in grounding.parse("dance <|point_start|>(1,2)<|point_end|>").reason
    assert "unknown skill" in skill.parse("win the game").reason


FRAGMENTS = st.sampled_from(["Skill:", "Grounding:", "Motion:", "Action:", "<|point_start|>", "<|point_end|>",
                             "<|object_ref_start|>", "(", ")", ",", "\n", " ", "move", "left", "999", "-3", "x",
                             "collect", "tree", "\x00", "é", "：", "Action: Action:"])


@settings(max_examples=400)
@given(st.one_of(st.text(), st.lists(FRAGMENTS | st.text(max_size=5)).map("".join)))
def test_garbage_never_raises(text):
    reply = parse_reply(text)
    assert reply.executed_level is None or reply.executed_level in reply.levels
    assert reply.error is None or isinstance(reply.error, ParseError)
    for module in MODULES.values():
        assert isinstance(module.parse(text), (ParseError, raw.RawAction, motion.Motion, grounding.Grounding, skill.Skill))


def test_non_string_replies_are_errors_not_exceptions():
    assert parse_reply(None).error is not None
    assert parse_reply(b"Action: noop").error is not None
