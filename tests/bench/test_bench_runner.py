import sqlite3

import pytest

from crossagent.agents import registry
from crossagent.agents.random_agent import RandomAgent
from crossagent.bench.results_store import ResultsStore
from crossagent.bench.runner import plan_episodes, run_benchmark


class CrashOnWood1(RandomAgent):
    """Raises mid-episode on task wood-1, plays randomly elsewhere."""

    def reset(self, task, seed):
        super().reset(task, seed)
        self._task_id = task.id

    def act(self, observation, state):
        if self._task_id == "wood-1":
            raise RuntimeError("agent exploded on wood-1")
        return super().act(observation, state)


def interrupting_after(episodes: int) -> type:
    """An agent class whose instances stop the whole run (as Ctrl-C does) at episode `episodes` + 1."""
    started = {"count": 0}

    class Interrupting(RandomAgent):
        def reset(self, task, seed):
            started["count"] += 1
            if started["count"] > episodes:
                raise KeyboardInterrupt
            super().reset(task, seed)

    return Interrupting


def test_plan_skips_done_and_orders_by_world_seed(tiny_tasks):
    plan = plan_episodes(tiny_tasks, trials=2, done={("wood-0", 1)})
    keys = [(task.id, trial) for task, trial in plan]
    assert keys == [("survive-0", 0), ("survive-0", 1), ("wood-0", 0),
                    ("survive-1", 0), ("survive-1", 1), ("wood-1", 0), ("wood-1", 1)]
    with pytest.raises(ValueError):
        plan_episodes(tiny_tasks, trials=0)


def test_resume_runs_only_missing_episodes(tmp_path, tiny_tasks):
    store_path = tmp_path / "results.sqlite"
    first = run_benchmark("random", tiny_tasks, trials=2, workers=1, store_path=store_path, suite_name="tiny",
                          progress=False, mini_ids=("wood-0",))
    assert (first.planned, first.skipped, first.ran, first.errors) == (8, 0, 8, 0)
    with ResultsStore(store_path) as store:
        before = {(r.task_id, r.trial): r for r in store.episodes()}
    # A run interrupted before these three finished:
    db = sqlite3.connect(store_path)
    db.execute("DELETE FROM episodes WHERE (task_id, trial) IN (('wood-0', 1), ('survive-1', 0), ('wood-1', 1))")
    db.commit()
    db.close()
    second = run_benchmark("random", tiny_tasks, trials=2, workers=1, store_path=store_path, suite_name="tiny",
                           progress=False, mini_ids=("wood-0",))
    assert (second.planned, second.skipped, second.ran) == (8, 5, 3)
    assert second.summary.overall.episodes == 8 and second.summary.overall.tasks == 4
    assert second.summary == first.summary
    with ResultsStore(store_path) as store:
        after = {(r.task_id, r.trial): r for r in store.episodes()}
    for key, row in before.items():  # the rerun episodes are the same episodes: the env is deterministic
        assert (after[key].success, after[key].steps, after[key].actions) == (row.success, row.steps, row.actions)
    more = run_benchmark("random", tiny_tasks, trials=3, workers=1, store_path=store_path, suite_name="tiny",
                         progress=False)
    assert (more.planned, more.skipped, more.ran) == (12, 8, 4)


def test_a_crashing_episode_is_stored_and_the_run_goes_on(tmp_path, tiny_tasks, monkeypatch):
    monkeypatch.setitem(registry.AGENTS, "crashy", CrashOnWood1)
    store_path = tmp_path / "results.sqlite"
    run = run_benchmark("crashy", tiny_tasks, trials=2, workers=1, store_path=store_path, suite_name="tiny",
                        progress=False)
    assert (run.ran, run.errors) == (8, 2)
    with ResultsStore(store_path) as store:
        rows = store.episodes("crashy", "tiny")
    crashed = [r for r in rows if r.error is not None]
    assert {(r.task_id, r.trial) for r in crashed} == {("wood-1", 0), ("wood-1", 1)}
    assert all("RuntimeError: agent exploded on wood-1" in r.error and not r.success for r in crashed)
    others = [r for r in rows if r.task_id != "wood-1"]
    assert len(others) == 6 and all(r.error is None and r.steps > 0 for r in others)
    assert all(r.success for r in others if r.task_id.startswith("survive"))
    assert run.summary.overall.errors == 2 and run.summary.categories[0].errors == 2

    rerun = run_benchmark("crashy", tiny_tasks, trials=2, workers=1, store_path=store_path, suite_name="tiny",
                          progress=False)
    assert rerun.ran == 0  # errors are stored results...
    monkeypatch.setitem(registry.AGENTS, "crashy", RandomAgent)
    retried = run_benchmark("crashy", tiny_tasks, trials=2, workers=1, store_path=store_path, suite_name="tiny",
                            progress=False, retry_errors=True)
    assert (retried.ran, retried.skipped, retried.summary.overall.errors) == (2, 6, 0)  # ...unless retried


def test_an_interrupted_run_keeps_what_finished(tmp_path, tiny_tasks, monkeypatch):
    monkeypatch.setitem(registry.AGENTS, "flaky", interrupting_after(3))
    store_path = tmp_path / "results.sqlite"
    with pytest.raises(KeyboardInterrupt):
        run_benchmark("flaky", tiny_tasks, trials=2, workers=1, store_path=store_path, suite_name="tiny",
                      progress=False)
    with ResultsStore(store_path) as store:
        assert len(store.done_keys("flaky", "tiny")) == 3
    monkeypatch.setitem(registry.AGENTS, "flaky", RandomAgent)
    resumed = run_benchmark("flaky", tiny_tasks, trials=2, workers=1, store_path=store_path, suite_name="tiny",
                            progress=False)
    assert (resumed.skipped, resumed.ran, resumed.summary.overall.episodes) == (3, 5, 8)


def test_unknown_agent_and_empty_task_list_are_refused(tmp_path, tiny_tasks):
    with pytest.raises(ValueError, match="unknown agent"):
        run_benchmark("nobody", tiny_tasks, 1, 1, tmp_path / "r.sqlite", "tiny", progress=False)
    with pytest.raises(ValueError, match="no tasks"):
        run_benchmark("random", (), 1, 1, tmp_path / "r.sqlite", "tiny", progress=False)


def test_a_crashing_env_is_stored_and_the_run_goes_on(tmp_path, tiny_tasks):
    from dataclasses import replace

    broken = replace(tiny_tasks[0], id="bad-seed", world_seed=2**70)  # a suite file would refuse it
    run = run_benchmark("random", [broken, *tiny_tasks[1:]], trials=1, workers=2, store_path=tmp_path / "r.sqlite",
                        suite_name="tiny", progress=False)
    assert run.errors == 1 and run.ran == len(tiny_tasks)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        crashed = [row for row in store.episodes() if row.error is not None]
    assert [row.task_id for row in crashed] == ["bad-seed"]
    assert "Seed must be between 0 and 2**32 - 1" in crashed[0].error


def test_episodes_are_the_same_whatever_the_workers(tmp_path, tiny_tasks):
    stored = {}
    for workers in (1, 2):
        store_path = tmp_path / f"workers-{workers}" / "results.sqlite"
        run_benchmark("random", tiny_tasks, trials=2, workers=workers, store_path=store_path, suite_name="tiny",
                      progress=False)
        with ResultsStore(store_path) as store:
            stored[workers] = {(r.task_id, r.trial): (r.success, r.steps, r.actions) for r in store.episodes()}
    assert len(stored[1]) == 8 and stored[1] == stored[2]
    assert len({tuple(actions) for _, _, actions in stored[1].values()}) > 1  # random: the episodes differ


def test_an_edited_task_definition_runs_its_episodes_again(tmp_path, tiny_tasks, capsys):
    from dataclasses import replace

    store_path = tmp_path / "results.sqlite"
    run_benchmark("random", tiny_tasks, trials=1, workers=1, store_path=store_path, suite_name="tiny", progress=False)
    edited = [replace(task, budget=task.budget + 5) if task.id == "wood-0" else task for task in tiny_tasks]
    again = run_benchmark("random", edited, trials=1, workers=1, store_path=store_path, suite_name="tiny",
                          progress=False)
    assert (again.ran, again.skipped) == (1, 3)
    assert "1 task(s) defined otherwise (wood-0)" in capsys.readouterr().err
