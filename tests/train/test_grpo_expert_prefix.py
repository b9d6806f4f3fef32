"""Expert prefixes: a share of GRPO's groups starts part of the way along the expert's own solution of its trial,
so that the model is left the task's last decisions."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest

from crossagent.agents.expert import ExpertAgent
from crossagent.bench.episode import make_env
from crossagent.bench.episode_loop import run_episode
from crossagent.models.reply_request import Sample
from crossagent.tasks.suite import load_suite
from crossagent.train.grpo import GRPOConfig, train
from crossagent.train.grpo_log import GROUPS_CSV
from crossagent.train.rollouts import (RolloutSettings, collect_rollouts, draw_expert_prefixes, expert_solution_steps,
                                       group_specs, prefix_steps)

from .conftest import tiny_config

TABLE = "craft.place_table.from_scratch.w47"  # the expert collects wood, then places the table


class ConstantSampler:
    def __init__(self, reply: str):
        self.reply = reply

    def sample(self, requests):
        return [Sample(self.reply, (7,)) for _ in requests]


def expert_actions(task, trial: int) -> list[int]:
    expert = ExpertAgent()
    return run_episode(make_env(expert), expert, task, trial).actions


def test_prefix_steps_leave_the_model_at_least_the_last_step():
    assert [prefix_steps(f, 10) for f in (0.0, 0.04, 0.5, 0.96, 1.0)] == [1, 1, 5, 9, 9]
    assert prefix_steps(0.5, None) == 0 and prefix_steps(0.5, 1) == 0  # no solution, or nothing to share


def test_a_share_of_groups_gets_a_prefix_and_share_zero_draws_nothing():
    rng = np.random.default_rng(0)
    assert draw_expert_prefixes(5, 0.0, 0.5, rng) == [None] * 5
    assert rng.random() == np.random.default_rng(0).random()  # the generator was not used
    drawn = draw_expert_prefixes(4000, 0.25, 0.5, np.random.default_rng(1))
    fractions = [f for f in drawn if f is not None]
    assert len(fractions) / len(drawn) == pytest.approx(0.25, abs=0.03) and all(0.5 <= f < 1 for f in fractions)
    assert np.mean(fractions) == pytest.approx(0.75, abs=0.02)  # uniform over [0.5, 1)
    assert all(f is not None for f in draw_expert_prefixes(10, 1.0, 0.0, np.random.default_rng(2)))


@pytest.mark.parametrize("fields, message", [({"expert_prefix_share": -0.1}, "expert prefix must be within 0..1"),
                                             ({"expert_prefix_share": 1.5}, "expert prefix must be within 0..1"),
                                             ({"expert_prefix_earliest": 1.0}, "earliest hand-over"),
                                             ({"expert_prefix_earliest": -0.2}, "earliest hand-over")])
def test_a_share_or_hand_over_outside_0_to_1_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        GRPOConfig(model="m", output_dir="o", **fields)


def test_with_a_prefix_the_model_makes_the_last_decision():
    """Placing the table at once fails from the start (no wood), and succeeds after the expert's wood."""
    task = load_suite().task(TABLE)
    specs = group_specs([task, task], group_size=2, first_trial=3, expert_prefixes=[None, 0.999])
    settings = RolloutSettings(max_episode_steps=12, requery_every=1)
    batch = collect_rollouts(specs, ConstantSampler("Action: place_table"), settings, seed=0)
    plain, prefixed = batch.episodes[:2], batch.episodes[2:]
    assert not any(e.result.success for e in plain) and all(e.result.steps == 12 for e in plain)
    assert all("expert_prefix_steps" not in e.result.extra and len(e.turns) == 12 for e in plain)
    solution = expert_solution_steps(task, 4)
    assert solution is not None and solution >= 3
    expert = expert_actions(task, 4)
    for episode in prefixed:
        result = episode.result
        assert result.extra["expert_prefix_steps"] == solution - 1
        assert result.actions[:solution - 1] == expert[:solution - 1]  # the expert's own steps, in this trial
        assert result.success and episode.episode_return == 1.0 and result.steps == solution
        assert len(episode.turns) == 1 and result.extra["calls"] == 1 and result.extra["steps"] == 1


def test_members_of_a_group_share_the_prefix_and_then_differ():
    task = load_suite().task(TABLE)
    specs = group_specs([task], group_size=2, first_trial=0, expert_prefixes=[0.5])
    batch = collect_rollouts(specs, ConstantSampler("Action: noop"), RolloutSettings(max_episode_steps=8), seed=0)
    steps = prefix_steps(0.5, expert_solution_steps(task, 0))
    assert steps >= 2
    first, second = batch.episodes
    assert first.result.actions[:steps] == second.result.actions[:steps] == expert_actions(task, 0)[:steps]
    assert np.array_equal(first.turns[0].images[-1], second.turns[0].images[-1])  # identical hand-over states


def test_a_run_logs_each_groups_prefix_within_the_episode_cap(tiny_path, tmp_path):
    """Every group is asked for a prefix; a group gets one when the expert solves its trial within the cap."""
    out = tmp_path / "run"
    train(tiny_config(tiny_path, out, updates=1, expert_prefix_share=1.0, kl_coef=0.0, max_episode_steps=20))
    with (out / GROUPS_CSV).open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2
    suite = load_suite()
    solved = []
    for row in rows:
        task = suite.task(row["task"])
        capped = replace(task, budget=min(task.budget, 20))
        solved.append(expert_solution_steps(capped, int(row["group"]) + 2))  # trial: iteration x 2 + group
        assert (int(row["expert_prefix_steps"]) > 0) == (solved[-1] is not None and solved[-1] >= 2)
    assert any(solved) and not all(solved)  # both cases are checked
