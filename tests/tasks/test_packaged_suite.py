"""The packaged suite: size, mini set, agreement with the spec, and solvability by the expert."""

from collections import Counter

import pytest

from crossagent.cli import main
from crossagent.tasks.generate import candidate_tasks, derive_budget
from crossagent.tasks.suite import load_suite
from crossagent.tasks.task import CATEGORIES

SUITE = load_suite()


def test_suite_size_per_category():
    counts = Counter(task.category for task in SUITE.tasks)
    assert len(SUITE.tasks) >= 800
    assert all(counts[category] >= 150 for category in CATEGORIES), counts


def test_mini_set_has_ten_mixed_tasks_per_category():
    mini = SUITE.mini
    for category in CATEGORIES:
        tasks = [t for t in mini if t.category == category]
        assert len(tasks) == 10
        assert {t.difficulty for t in tasks} == {"easy", "medium", "hard"}


def test_every_task_comes_from_the_spec_with_a_budget_derived_from_the_expert():
    candidates = {task.id: task for task in candidate_tasks()}
    for task in SUITE.tasks:
        candidate = candidates[task.id]
        assert (candidate.start, candidate.success, candidate.world_seed) == (task.start, task.success, task.world_seed)
        assert task.expert_steps is not None and task.budget == derive_budget(task.expert_steps)
        assert len(task.paraphrases) >= 2


def test_the_expert_solves_the_mini_set(tmp_path, capsys):
    assert main(["tasks", "validate", "--suite", "mini", "--workers", "1", "--out", str(tmp_path)]) == 0
    assert "validated 30 tasks: expert solved 30" in capsys.readouterr().out


@pytest.mark.slow
def test_the_expert_solves_the_whole_suite(tmp_path, capsys):
    assert main(["tasks", "validate", "--suite", "full", "--workers", "2", "--out", str(tmp_path)]) == 0
    assert f"expert solved {len(SUITE.tasks)}" in capsys.readouterr().out
