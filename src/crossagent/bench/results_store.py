"""The results file: one SQLite row per finished episode, committed as it arrives.

A row is keyed (agent, suite, task_id, trial), so a rerun of the same benchmark skips what
is stored (resume). It keeps the primitive actions, so any episode can be replayed, and a
free-form `extra` JSON object for per-episode statistics other modules add later.
WAL mode lets a report read the file while a run is still writing to it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from crossagent.bench.episode import EpisodeResult

RESULTS_FILE = "results.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    agent TEXT NOT NULL,
    suite TEXT NOT NULL,
    task_id TEXT NOT NULL,
    trial INTEGER NOT NULL,
    category TEXT NOT NULL,
    seed INTEGER NOT NULL,
    success INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    episode_return REAL NOT NULL,
    wall_time REAL NOT NULL,
    died INTEGER NOT NULL,
    unlocked TEXT NOT NULL,
    actions TEXT NOT NULL,
    extra TEXT NOT NULL,
    error TEXT,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (agent, suite, task_id, trial)
);
CREATE TABLE IF NOT EXISTS suites (
    name TEXT PRIMARY KEY,
    mini_ids TEXT NOT NULL
);
"""

_COLUMNS = ("agent", "suite", "task_id", "trial", "category", "seed", "success", "steps", "episode_return",
            "wall_time", "died", "unlocked", "actions", "extra", "error", "finished_at")


@dataclass(frozen=True)
class EpisodeRow:
    agent: str
    suite: str
    task_id: str
    trial: int
    category: str
    seed: int
    success: bool
    steps: int
    episode_return: float = 0.0
    wall_time: float = 0.0
    died: bool = False
    unlocked: list[str] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    error: str | None = None  # the traceback when the episode raised; such an episode counts as a failure
    finished_at: str = ""

    @property
    def exception_line(self) -> str:
        """The traceback's last line, e.g. `ValueError: ...`; empty when the episode did not raise."""
        return self.error.strip().splitlines()[-1] if self.error else ""


class ResultsStore:
    """Open (or create) a results file; use as a context manager or call close()."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            self._db.close()
            raise ValueError(f"{self.path}: results schema version {version}, this code reads {SCHEMA_VERSION}")
        with self._db:
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def add(self, result: EpisodeResult, agent: str, suite: str, error: str | None = None) -> None:
        """Store one finished episode (replacing a stored one with the same key) and commit."""
        values = (agent, suite, result.task_id, result.trial, result.category, result.seed, int(result.success),
                  result.steps, result.episode_return, result.wall_time, int(result.died),
                  json.dumps(result.unlocked), json.dumps(result.actions), json.dumps(result.extra), error,
                  datetime.now(timezone.utc).isoformat(timespec="seconds"))
        with self._db:
            self._db.execute(f"INSERT OR REPLACE INTO episodes ({', '.join(_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(_COLUMNS))})", values)

    def done_keys(self, agent: str, suite: str) -> set[tuple[str, int]]:
        """(task_id, trial) of every stored episode of this agent on this suite, errors included."""
        cursor = self._db.execute("SELECT task_id, trial FROM episodes WHERE agent = ? AND suite = ?", (agent, suite))
        return {(task_id, trial) for task_id, trial in cursor}

    def delete_errors(self, agent: str, suite: str) -> int:
        """Forget the episodes that raised, so the next run retries them; returns how many."""
        with self._db:
            cursor = self._db.execute("DELETE FROM episodes WHERE agent = ? AND suite = ? AND error IS NOT NULL",
                                      (agent, suite))
        return cursor.rowcount

    def episodes(self, agent: str | None = None, suite: str | None = None) -> list[EpisodeRow]:
        """Stored episodes, optionally of one agent and/or one suite, in key order."""
        where, params = [], []
        for name, value in (("agent", agent), ("suite", suite)):
            if value is not None:
                where.append(f"{name} = ?")
                params.append(value)
        query = f"SELECT {', '.join(_COLUMNS)} FROM episodes"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY agent, suite, task_id, trial"
        return [_row(values) for values in self._db.execute(query, params)]

    def agents_and_suites(self) -> list[tuple[str, str]]:
        return list(self._db.execute("SELECT DISTINCT agent, suite FROM episodes ORDER BY agent, suite"))

    def set_mini_ids(self, suite: str, mini_ids: tuple[str, ...] | list[str]) -> None:
        """Remember a suite's mini set, so reports rendered from the store alone can show mini ASR."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO suites (name, mini_ids) VALUES (?, ?)",
                             (suite, json.dumps(list(mini_ids))))

    def mini_ids(self, suite: str) -> tuple[str, ...]:
        found = self._db.execute("SELECT mini_ids FROM suites WHERE name = ?", (suite,)).fetchone()
        return tuple(json.loads(found[0])) if found else ()


def _row(values: tuple) -> EpisodeRow:
    data = dict(zip(_COLUMNS, values))
    for name in ("unlocked", "actions", "extra"):
        data[name] = json.loads(data[name])
    data["success"] = bool(data["success"])
    data["died"] = bool(data["died"])
    return EpisodeRow(**data)
