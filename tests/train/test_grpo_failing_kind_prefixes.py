"""Expert prefixes for failing kinds only (`expert_prefix_kinds="failing"`): a group gets a prefix when its kind's
newest group that started without one solved no episode; the state is the group log, so a resumed run draws the
prefixes an uninterrupted one does."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from crossagent.tasks.suite import load_suite
from crossagent.train import grpo
from crossagent.train.curriculum import failing_kinds
from crossagent.train.grpo import GRPOConfig, train
from crossagent.train.rollouts import collect_rollouts, draw_expert_prefixes

from .conftest import tiny_config


def test_the_newest_group_without_a_prefix_decides_whether_a_kind_fails():
    rows = [{"task": "craft.x.y.w1", "successes": "0", "expert_prefix_steps": "0"},
            {"task": "craft.x.y.w2", "successes": "2", "expert_prefix_steps": "5"},  # helped: does not count
            {"task": "embodied.z.y.w2", "successes": "0", "expert_prefix_steps": "0"},
            {"task": "embodied.z.y.w5", "successes": "1", "expert_prefix_steps": "0"},
            {"task": "combat.a.b.w3", "successes": "0", "expert_prefix_steps": "3"}]  # only ever helped: unknown
    assert failing_kinds(rows) == {"craft.x.y": True, "embodied.z.y": False}
    assert failing_kinds([{"task": "own", "successes": "0"}]) == {"own": True}  # a log from before prefixes


def test_eligibility_masks_the_same_draws():
    everyone = draw_expert_prefixes(8, 0.75, 0.5, np.random.default_rng(4))
    eligible = [index % 2 == 0 for index in range(8)]
    masked = draw_expert_prefixes(8, 0.75, 0.5, np.random.default_rng(4), eligible)
    assert masked == [drawn if allow else None for drawn, allow in zip(everyone, eligible)]
    assert any(drawn is not None for drawn in masked) and any(drawn is not None for drawn in everyone[1::2])
    with pytest.raises(ValueError, match="3 eligibility marks for 8 groups"):
        draw_expert_prefixes(8, 0.5, 0.5, np.random.default_rng(4), [True] * 3)


def test_an_unknown_choice_of_kinds_is_refused():
    with pytest.raises(ValueError, match="expert_prefix_kinds must be one of all, failing, got 'hard'"):
        GRPOConfig(model="m", output_dir="o", expert_prefix_kinds="hard")


def rig_successes(monkeypatch, successes_by_task: dict[str, list[bool]], drawn: dict[int, list]) -> None:
    """Real rollouts with each member's success set per task; `drawn` collects each call's (task, prefix) pairs."""
    def rigged(specs, sampler, settings, seed):
        drawn[len(drawn) + 1] = [(spec.task.id, spec.expert_prefix) for spec in specs]
        batch = collect_rollouts(specs, sampler, settings, seed)
        for episode in batch.episodes:
            episode.result.success = successes_by_task[episode.spec.task.id][episode.spec.member]
            episode.episode_return = float(episode.result.success)
        return batch

    monkeypatch.setattr(grpo, "collect_rollouts", rigged)


def failing_config(tiny_path, out, updates: int) -> GRPOConfig:
    # The three training tasks (one per category), all three drawn every iteration; every eligible group prefixed.
    return tiny_config(tiny_path, out, updates=updates, tasks_per_batch=3, expert_prefix_share=1.0,
                       expert_prefix_kinds="failing", kl_coef=0.0)


@pytest.fixture(scope="module")
def failing_run(tiny_path, tmp_path_factory):
    """The first task fails every episode, the second succeeds once, the third always."""
    tasks = grpo.train_tasks(load_suite(), 1)
    successes = dict(zip((task.id for task in tasks), ([False, False], [True, False], [True, True])))
    out, drawn = tmp_path_factory.mktemp("failing") / "run", {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        rig_successes(monkeypatch, successes, drawn)
        train(failing_config(tiny_path, out, updates=2))
    return out, tasks, successes, drawn


def test_only_the_failing_kind_gets_a_prefix_and_only_once_it_is_known_to_fail(failing_run):
    _, tasks, _, drawn = failing_run
    assert sorted(task for task, _ in drawn[1]) == sorted(task.id for task in tasks for _ in range(2))
    assert all(prefix is None for _, prefix in drawn[1])  # no group has tried any kind yet
    prefixed = {task for task, prefix in drawn[2] if prefix is not None}
    assert prefixed == {tasks[0].id} and all(0.5 <= prefix < 1 for task, prefix in drawn[2] if task == tasks[0].id)


def test_a_resumed_run_draws_the_prefixes_of_an_uninterrupted_one(failing_run, tiny_path, tmp_path, monkeypatch):
    out, _, successes, drawn = failing_run
    resumed = tmp_path / "run"
    shutil.copytree(out, resumed)
    for path in resumed.glob("checkpoint-000002"):
        shutil.rmtree(path)
    again: dict[int, list] = {}
    rig_successes(monkeypatch, successes, again)
    train(failing_config(tiny_path, resumed, updates=2))
    assert again == {1: drawn[2]}
