"""Chain-of-Action replies: which level executes in each mode, and structured errors."""

from crossagent.actions.chain import parse_reply
from crossagent.agents.level_agent import chosen_level

COA = """Thought: the tree is to the right.
Skill: collect wood
Grounding: collect <|object_ref_start|>tree<|object_ref_end|><|point_start|>(611,388)<|point_end|>
Action: move_right"""


def test_the_most_concrete_level_executes():
    reply = parse_reply(COA)
    assert reply.levels == ("skill", "grounding", "raw")
    assert reply.executed_level == "raw" and reply.error is None
    assert chosen_level(reply, "slow") == "raw"
    assert chosen_level(reply, "fast") == "grounding"
    assert chosen_level(reply, "dynamic") == "raw"


def test_upper_level_only_reply_in_each_mode():
    reply = parse_reply("Skill: make wood pickaxe")
    assert chosen_level(reply, "slow") is None  # slow mode needs an Action: line
    assert chosen_level(reply, "fast") == "skill"
    assert chosen_level(reply, "dynamic") == "skill"


def test_last_line_of_a_level_wins_and_is_counted():
    reply = parse_reply("Action: move_left\nAction: do")
    assert reply.action("raw").name == "do"
    assert reply.line_counts == {"raw": 2}


def test_a_malformed_executed_line_makes_the_reply_invalid_without_fallback():
    reply = parse_reply("Skill: collect wood\nAction: teleport")
    assert reply.executed_level == "raw"
    assert "unknown primitive action 'teleport'" in reply.error.reason
    assert chosen_level(reply, "dynamic") is None
    assert chosen_level(reply, "fast") == "skill"


def test_a_reply_without_levels_names_the_problem():
    assert "no level tag" in parse_reply("I will chop the tree.").error.reason
