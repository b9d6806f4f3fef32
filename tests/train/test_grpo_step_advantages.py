"""Step-level advantages (GiGPO): a group's turns that saw the same prompt are compared by their discounted return
from that turn on, and `step_advantage_coef` x that joins each turn's episode advantage in the loss."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from crossagent.agents.model_policy import SampledTurn
from crossagent.bench.episode import EpisodeResult
from crossagent.tasks.suite import load_suite
from crossagent.train import grpo
from crossagent.train.grpo import GRPOConfig, train
from crossagent.train.grpo_log import LOG_CSV
from crossagent.train.grpo_loss import returns_to_go, step_advantages
from crossagent.train.rollouts import (EpisodeRollout, EpisodeSpec, RolloutSettings, episode_return, turn_rewards,
                                       turn_state)

from .conftest import tiny_config
from .test_grpo_failing_kind_prefixes import rig_successes


def test_returns_to_go_discount_what_comes_after_each_turn():
    assert returns_to_go([0.0, 0.0, 1.0], 0.5) == [0.25, 0.5, 1.0]
    assert returns_to_go([-0.1, 0.0, 1.0], 1.0) == pytest.approx([0.9, 1.0, 1.0])
    assert returns_to_go([], 0.9) == []


def test_a_loop_broken_nearer_the_success_scores_above_the_visits_that_looped():
    # Group 0: episode A visits state "s" twice and succeeds after its 4th turn; episode B sees "s" once and fails.
    # Group 1 has a state "s" too, but anchors never cross groups.
    gamma = 0.5
    out = step_advantages([0, 0, 1], [["s", "a", "s", "b"], ["s", "c"], ["s", "s"]],
                          [[0, 0, 0, 1.0], [0, 0], [0, 0]], gamma)
    # Anchor (0, "s"): returns-to-go gamma^3, gamma^1, 0 -> normalised with Bessel's std.
    values = np.array([gamma ** 3, gamma, 0.0])
    expected = (values - values.mean()) / (values.std(ddof=1) + 1e-6)
    assert out[0][0] == pytest.approx(expected[0], abs=1e-5) and out[0][2] == pytest.approx(expected[1], abs=1e-5)
    assert out[1][0] == pytest.approx(expected[2], abs=1e-5)
    assert out[0][2] > out[0][0] > out[1][0]
    assert out[0][1] == out[0][3] == out[1][1] == 0.0  # states seen once
    assert out[2] == [0.0, 0.0]  # group 1: the same state twice, with equal returns-to-go


def test_bad_step_advantage_inputs_are_refused():
    with pytest.raises(ValueError, match="2 groups, 1 state lists and 1 reward lists"):
        step_advantages([0, 1], [["s"]], [[1.0]], 0.9)
    with pytest.raises(ValueError, match="2 states for 1 rewards"):
        step_advantages([0], [["s", "t"]], [[1.0]], 0.9)
    with pytest.raises(ValueError, match=r"step discount must be within \(0, 1\], got 0"):
        step_advantages([0], [["s"]], [[1.0]], 0.0)
    with pytest.raises(ValueError, match="step_advantage_coef -1.0 must be 0 or more"):
        GRPOConfig(model="m", output_dir="o", step_advantage_coef=-1.0)
    with pytest.raises(ValueError, match="step_discount 1.5 within"):
        GRPOConfig(model="m", output_dir="o", step_discount=1.5)


def sampled(text: str, image_value: int = 0, unparseable: bool = False) -> SampledTurn:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    return SampledTurn(messages, [np.full((4, 4, 3), image_value, np.uint8)], "Skill: collect wood", (1, 2),
                       unparseable)


def test_turn_rewards_add_up_to_the_episode_return_and_states_tell_prompts_apart():
    settings = RolloutSettings(success_reward=1.0, invalid_reply_penalty=0.1, call_cost=0.01)
    turns = [sampled("view A"), sampled("view B", unparseable=True), sampled("view A")]
    task = load_suite().tasks[0]
    result = EpisodeResult(task.id, task.category, 0, 0, True, 7, 0.0, 0.0, False)
    episode = EpisodeRollout(EpisodeSpec(task, 0, 0), result, turns, episode_return(True, 1, 3, settings))
    rewards = turn_rewards(episode, settings)
    assert rewards == pytest.approx([-0.01, -0.11, 0.99])
    assert math.isclose(sum(rewards), episode.episode_return)
    assert turn_state(turns[0]) == turn_state(turns[2]) != turn_state(turns[1])
    assert turn_state(sampled("view A", image_value=1)) != turn_state(turns[0])  # same text, another image


def test_a_run_adds_the_weighted_step_advantage_to_each_turns_episode_advantage(tiny_path, tmp_path, monkeypatch):
    """One group per task, member 0 succeeds and member 1 fails: both members' first prompts are the identical
    start, so the first turns form an anchor and differ; the loss sees episode + 0.5 x step advantages."""
    tasks = grpo.train_tasks(load_suite(), 1)[:1]
    rig_successes(monkeypatch, {tasks[0].id: [True, False]}, {})
    recorded, seen = [], set()
    real_steps, real_loss = grpo.step_advantages, grpo.grpo_loss

    def recording_steps(groups, states, rewards, discount, eps):
        recorded.append(real_steps(groups, states, rewards, discount, eps))
        return recorded[-1]

    def recording_loss(logp, old, ref, advantages, *rest):
        seen.update(round(value, 4) for value in advantages.tolist())
        return real_loss(logp, old, ref, advantages, *rest)

    monkeypatch.setattr(grpo, "step_advantages", recording_steps)
    monkeypatch.setattr(grpo, "grpo_loss", recording_loss)
    out = tmp_path / "run"
    train(tiny_config(tiny_path, out, updates=1, tasks_per_batch=1, step_advantage_coef=0.5, kl_coef=0.0), tasks)
    (steps,) = recorded
    assert steps[0][0] > 0 > steps[1][0]  # the first turns: the winner's reply to the start scores above
    episode = 1 / math.sqrt(2)  # (1 - 0.5) / std([1, 0]) with Bessel's correction
    expected = {round(sign * episode + 0.5 * value, 4) for sign, values in zip((1, -1), steps) for value in values}
    assert seen == expected
    with (out / LOG_CSV).open() as file:
        (row,) = list(csv.DictReader(file))
    share = sum(value != 0 for values in steps for value in values) / sum(len(values) for values in steps)
    assert float(row["step_signal_turns"]) == pytest.approx(share) and share > 0


def test_without_the_coefficient_no_step_advantage_is_computed(tiny_path, tmp_path, monkeypatch):
    tasks = grpo.train_tasks(load_suite(), 1)[:1]
    rig_successes(monkeypatch, {tasks[0].id: [True, False]}, {})
    monkeypatch.setattr(grpo, "step_advantages", lambda *args: pytest.fail("computed without a coefficient"))
    out = tmp_path / "run"
    train(tiny_config(tiny_path, out, updates=1, tasks_per_batch=1, kl_coef=0.0), tasks)
    with (out / LOG_CSV).open() as file:
        assert float(next(csv.DictReader(file))["step_signal_turns"]) == 0.0
