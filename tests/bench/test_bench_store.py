import sqlite3

import pytest

from crossagent.bench.episode import EpisodeResult
from crossagent.bench.results_store import EpisodeRow, ResultsStore


def result(task_id="t", trial=0, success=True, steps=3) -> EpisodeResult:
    return EpisodeResult(task_id, "craft", trial, seed=1234, success=success, steps=steps, episode_return=1.5,
                         wall_time=0.25, died=False, unlocked=["collect_wood"], actions=[5, 1, 5][:steps],
                         extra={"levels": {"raw": 3}})


def test_round_trip_keeps_every_field(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        store.add(result(), "random", "tiny")
        store.add(result("u", 2, success=False, steps=0), "random", "tiny", error="Traceback...\nRuntimeError: boom")
    with ResultsStore(path) as store:  # reopened: the rows were committed
        rows = store.episodes()
    assert [(r.task_id, r.trial) for r in rows] == [("t", 0), ("u", 2)]
    ok, failed = rows
    assert ok == EpisodeRow(agent="random", suite="tiny", task_id="t", trial=0, category="craft", seed=1234,
                            success=True, steps=3, episode_return=1.5, wall_time=0.25, died=False,
                            unlocked=["collect_wood"], actions=[5, 1, 5], extra={"levels": {"raw": 3}},
                            error=None, finished_at=ok.finished_at)
    assert ok.finished_at
    assert failed.error.endswith("RuntimeError: boom") and failed.success is False and failed.actions == []


def test_keys_filters_and_replacement(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.add(result("t", 0), "random", "tiny")
        store.add(result("t", 1), "random", "tiny")
        store.add(result("t", 0), "expert", "tiny")
        store.add(result("t", 0), "random", "other")
        store.add(result("t", 0, success=False), "random", "tiny")  # same key: replaces
        assert store.done_keys("random", "tiny") == {("t", 0), ("t", 1)}
        assert store.done_keys("expert", "other") == set()
        assert len(store.episodes()) == 4
        assert [r.success for r in store.episodes("random", "tiny")] == [False, True]
        assert {r.agent for r in store.episodes(suite="tiny")} == {"random", "expert"}
        assert store.agents_and_suites() == [("expert", "tiny"), ("random", "other"), ("random", "tiny")]


def test_errors_can_be_forgotten_for_a_retry(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.add(result("t", 0), "random", "tiny")
        store.add(result("t", 1), "random", "tiny", error="boom")
        store.add(result("t", 1), "expert", "tiny", error="boom")
        assert store.delete_errors("random", "tiny") == 1
        assert store.done_keys("random", "tiny") == {("t", 0)}
        assert store.done_keys("expert", "tiny") == {("t", 1)}


def test_mini_ids_and_wal_mode(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        assert store.mini_ids("tiny") == ()
        store.set_mini_ids("tiny", ["a", "b"])
        assert store.mini_ids("tiny") == ("a", "b")
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_refuses_an_unknown_schema_version(tmp_path):
    path = tmp_path / "r.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(ValueError, match="schema version 99"):
        ResultsStore(path)
