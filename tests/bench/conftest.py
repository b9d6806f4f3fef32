"""Tiny hand-built suites: two worlds, short budgets, predicates a random agent meets or misses fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossagent.envs.start_state import StartState
from crossagent.tasks.predicates import Gain, Predicate, Survive
from crossagent.tasks.suite import TaskSuite
from crossagent.tasks.task import Task


def make_task(task_id: str, category: str, world_seed: int, success: Predicate, budget: int = 10,
              start: StartState = StartState()) -> Task:
    return Task(id=task_id, category=category, instruction=f"Do {task_id}.", paraphrases=("a", "b"),
                world_seed=world_seed, start=start, budget=budget, success=success)


@pytest.fixture
def tiny_tasks() -> tuple[Task, ...]:
    """wood-*: a random agent fails within 10 steps; survive-*: it succeeds after exactly 5."""
    return (
        make_task("wood-0", "embodied", 0, Gain("wood", 1)),
        make_task("wood-1", "embodied", 1, Gain("wood", 1)),
        make_task("survive-0", "combat", 0, Survive(5)),
        make_task("survive-1", "combat", 1, Survive(5)),
    )


@pytest.fixture
def tiny_suite(tiny_tasks) -> TaskSuite:
    return TaskSuite(name="tiny", version=1, tasks=tiny_tasks, mini_ids=("wood-0", "survive-0"))


@pytest.fixture
def suite_file(tmp_path, tiny_suite) -> Path:
    path = tmp_path / "tiny.json"
    tiny_suite.save(path)
    return path
