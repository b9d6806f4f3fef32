"""The level agent's modes and per-step level counts, with scripted reply streams."""

import pytest

from crossagent.agents.level_agent import LevelAgent
from crossagent.bench.episode import make_env
from crossagent.bench.episode_loop import run_episode
from crossagent.envs.start_state import Block, StartState
from crossagent.envs.view_geometry import point_of_cell
from crossagent.tasks.predicates import Gain, Survive
from crossagent.tasks.task import Task


class Scripted:
    """Replies from a list, then repeats the last one."""

    name = "scripted"
    uses_privileged_state = False

    def __init__(self, replies):
        self.replies = list(replies)
        self.seen_state = []

    def reset(self, task, seed):
        self.calls = 0

    def reply(self, observation, state):
        yield from ()  # scripted: never asks a model
        self.seen_state.append(state)
        text = self.replies[min(self.calls, len(self.replies) - 1)]
        self.calls += 1
        return text


def episode(policy, mode, success=Survive(12), start=StartState(daylight="day", clear_hostiles_within=64), **kwargs):
    agent = LevelAgent(policy, mode=mode, **kwargs)
    task = Task("t", "embodied", "x", ("y", "z"), 1, start, 12, success)
    result = run_episode(make_env(agent), agent, task, 0)
    return agent, result


def test_dynamic_mode_runs_the_reply_level_and_counts_every_step():
    agent, result = episode(Scripted(["Skill: explore\nMotion: wait 5"]), "dynamic")
    stats = result.extra
    assert result.steps == 12 and stats["steps"] == 12
    assert stats["executed"] == {"motion": 12}
    assert stats["contained"] == {"skill": 12, "motion": 12}
    assert stats["calls"] == 3  # 5 + 5 + 2 steps
    assert stats["steps_per_call"] == pytest.approx(4.0)


def test_slow_mode_executes_the_action_line_one_step_per_reply():
    agent, result = episode(Scripted(["Motion: wait 5\nAction: noop"]), "slow")
    assert result.extra["calls"] == 12 and result.extra["executed"] == {"raw": 12}
    assert result.extra["contained"] == {"motion": 12, "raw": 12}


def test_fast_mode_executes_the_upper_level_and_requeries_every_k_steps():
    agent, result = episode(Scripted(["Motion: wait 10\nAction: move_left"]), "fast", requery_every=4)
    assert result.extra["executed"] == {"motion": 12}
    assert result.extra["calls"] == 3
    assert result.extra["stops"]["budget"] == 2  # two re-queries cut the motion short


def test_invalid_replies_wait_one_step_and_are_counted():
    agent, result = episode(Scripted(["I think I should chop wood.", "Action: teleport", "Motion: wait 20"]), "dynamic")
    assert result.extra["executed"]["invalid"] == 2
    assert result.extra["invalid_steps"] == 2 and result.extra["executed"]["motion"] == 10
    assert result.extra["contained"]["raw"] == 1  # the malformed Action: line was still a raw line


def test_a_policy_never_sees_the_privileged_state():
    policy = Scripted(["Action: noop"])
    episode(policy, "slow")
    assert policy.seen_state and all(state is None for state in policy.seen_state)


def test_a_grounding_reply_solves_a_task_through_its_executor():
    x, y = point_of_cell((32, 32), (34, 32), 64)  # the tree two cells right of the spawn
    start = StartState(blocks=(Block("tree", 2, 0),), daylight="day", clear_hostiles_within=64)
    agent, result = episode(Scripted([f"Grounding: collect <|point_start|>({x},{y})<|point_end|>"]),
                            "dynamic", success=Gain("wood", 1), start=start)
    assert result.success and result.extra["calls"] == 1


def test_unknown_modes_are_rejected():
    with pytest.raises(ValueError, match="mode 'turbo' is not one of slow, fast, dynamic"):
        LevelAgent(Scripted(["Action: noop"]), mode="turbo")
