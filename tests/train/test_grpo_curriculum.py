"""The task curriculum: tasks whose newest group's returns were all equal are drawn less often; its state is the
group log, so a resumed run draws what an uninterrupted one does."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from crossagent.tasks.suite import load_suite
from crossagent.tasks.task import task_kind
from crossagent.train import grpo
from crossagent.train.curriculum import draw_tasks, settled_tasks
from crossagent.train.grpo import GRPOConfig, train
from crossagent.train.grpo_log import GROUPS_CSV
from crossagent.train.rollouts import collect_rollouts

from .conftest import tiny_config


@pytest.fixture(scope="module")
def tasks():
    """A task of each of 10 kinds."""
    return tuple({task_kind(task.id): task for task in load_suite().tasks}.values())[:10]


def test_weight_one_draws_as_before_the_curriculum(tasks):
    for iteration in range(1, 6):
        before = np.random.default_rng([3, iteration]).choice(len(tasks), size=4, replace=False)
        settled = {task_kind(task.id): True for task in tasks[:5]}
        assert draw_tasks(tasks, 4, 3, iteration, settled, 1.0) == [tasks[i] for i in before]


def test_settled_tasks_are_drawn_that_much_less_often(tasks):
    settled = {task_kind(task.id): index < 5 for index, task in enumerate(tasks)}
    drawn = [task for iteration in range(4000) for task in draw_tasks(tasks, 1, 0, iteration, settled, 0.1)]
    share = sum(settled[task_kind(task.id)] for task in drawn) / len(drawn)
    assert share == pytest.approx(0.5 / 5.5, abs=0.02)  # 5 tasks at weight 0.1 against 5 at weight 1
    assert {task.id for task in drawn} == {task.id for task in tasks}  # settled ones are still drawn


def test_the_newest_group_of_a_kind_decides_for_every_world_of_it():
    rows = [{"task": "craft.x.y.w1", "informative": "0"}, {"task": "embodied.z.y.w2", "informative": "0"},
            {"task": "craft.x.y.w3", "informative": "1"}, {"task": "own", "informative": "0"}]
    assert settled_tasks(rows) == {"craft.x.y": False, "embodied.z.y": True, "own": True}
    assert task_kind("combat.a.b.w12") == "combat.a.b" and task_kind("combat.a.b.world") == "combat.a.b.world"


@pytest.mark.parametrize("weight", [0.0, -0.5, 1.5])
def test_a_weight_outside_0_to_1_is_refused(weight):
    with pytest.raises(ValueError, match="settled_task_weight must be in"):
        GRPOConfig(model="m", output_dir="o", settled_task_weight=weight)


def rig_returns_by_task(monkeypatch, informative_tasks: set[str]) -> None:
    """Real rollouts, with returns set per task: the member index where informative, else 0 for everyone."""
    def rigged(specs, sampler, settings, seed):
        batch = collect_rollouts(specs, sampler, settings, seed)
        for episode in batch.episodes:
            differs = episode.spec.task.id in informative_tasks
            episode.episode_return = float(episode.spec.member) if differs else 0.0
        return batch

    monkeypatch.setattr(grpo, "collect_rollouts", rigged)


def group_log(out) -> list[dict]:
    with (out / GROUPS_CSV).open() as file:
        return list(csv.DictReader(file))


def curriculum_config(tiny_path, out, updates: int):
    # Three training tasks, two drawn per iteration; a settled task is drawn a thousandth as often.
    return tiny_config(tiny_path, out, updates=updates, settled_task_weight=0.001, kl_coef=0.0)


@pytest.fixture(scope="module")
def curriculum_run(tiny_path, tmp_path_factory):
    """Two iterations; the first iteration's second task gives no signal, every other task does."""
    out = tmp_path_factory.mktemp("curriculum") / "run"
    tasks = grpo.train_tasks(load_suite(), 1)
    settled = grpo.draw_tasks(tasks, 2, 0, 1, {}, 0.001)[1].id
    assert settled in {task.id for task in grpo.draw_tasks(tasks, 2, 0, 2, {}, 1.0)}  # drawn again without it
    with pytest.MonkeyPatch.context() as monkeypatch:
        rig_returns_by_task(monkeypatch, {task.id for task in load_suite().tasks} - {settled})
        train(curriculum_config(tiny_path, out, updates=2))
    return out, settled


def test_the_group_log_records_each_group_and_the_next_draw_avoids_the_settled_task(curriculum_run):
    out, settled = curriculum_run
    rows = group_log(out)
    assert [(row["iteration"], row["group"]) for row in rows] == [("1", "0"), ("1", "1"), ("2", "0"), ("2", "1")]
    first, second = rows[:2], rows[2:]
    assert first[1]["task"] == settled and first[1]["informative"] == "0" and first[1]["trained"] == "1"
    assert first[0]["informative"] == "1" and float(first[0]["mean_return"]) == 0.5  # members 0 and 1
    assert all(row["episodes"] == "2" and 0 <= int(row["successes"]) <= 2 for row in rows)
    # Of the three tasks, the settled one is left out: the other two are drawn.
    assert settled not in {row["task"] for row in second} and len({row["task"] for row in second}) == 2


def test_a_resumed_curriculum_draws_as_an_uninterrupted_one(curriculum_run, tiny_path, tmp_path, monkeypatch):
    out, settled = curriculum_run
    resumed = tmp_path / "run"
    shutil.copytree(out, resumed)
    for path in resumed.glob("checkpoint-000002"):
        shutil.rmtree(path)
    rig_returns_by_task(monkeypatch, {task.id for task in load_suite().tasks} - {settled})
    train(curriculum_config(tiny_path, resumed, updates=2))
    assert group_log(resumed) == group_log(out)


def test_resuming_a_curriculum_without_its_group_log_is_refused(curriculum_run, tiny_path, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(curriculum_run[0], out)
    (out / GROUPS_CSV).unlink()
    with pytest.raises(ValueError, match="lacks iterations 1..2 .* the curriculum and the failing kinds cannot"):
        train(curriculum_config(tiny_path, out, updates=3))
