"""The results file: one SQLite row per finished episode, committed as it arrives.

A row is keyed (agent, suite, task_id, trial) and by the fingerprints of what produced it: the
agent's settings (for a model: the checkpoint's content hash, the output format, mode, history,
observation and sampling settings) and the task's full definition (crossagent.fingerprint). A
run first registers its settings (`begin`); only the rows produced with the registered
settings count: resuming skips them, summaries read them. A run with other settings says
which changed and runs its episodes again; the older rows stay in the file, no longer counted.
Rows keep the primitive actions, so any episode can be replayed, and a free-form `extra` JSON
object for per-episode statistics. WAL mode lets a report read the file while a run writes it.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from crossagent.bench.episode import EpisodeResult
from crossagent.fingerprint import changes, fingerprint
from crossagent.tasks.task import Task

RESULTS_FILE = "results.sqlite"
SCHEMA_VERSION = 2
UNREGISTERED = ""  # the fingerprint of rows added without begin() (and of rows from schema version 1)

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
    agent_fingerprint TEXT NOT NULL DEFAULT '',
    task_fingerprint TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (agent, suite, task_id, trial, agent_fingerprint, task_fingerprint)
);
CREATE TABLE IF NOT EXISTS suites (
    name TEXT PRIMARY KEY,
    mini_ids TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agents (
    agent TEXT NOT NULL,
    suite TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    settings TEXT NOT NULL,
    PRIMARY KEY (agent, suite)
);
CREATE TABLE IF NOT EXISTS tasks (
    suite TEXT NOT NULL,
    task_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (suite, task_id)
);
"""
# Schema 1 keyed rows without fingerprints: its rows move over unregistered.
_MIGRATE_FROM_1 = """
ALTER TABLE episodes RENAME TO episodes_v1;
""" + _SCHEMA + """
INSERT INTO episodes SELECT *, '', '' FROM episodes_v1;
DROP TABLE episodes_v1;
"""

_COLUMNS = ("agent", "suite", "task_id", "trial", "category", "seed", "success", "steps", "episode_return",
            "wall_time", "died", "unlocked", "actions", "extra", "error", "finished_at")
# Rows produced with the registered settings: unregistered agents and tasks count as fingerprint ''.
_CURRENT = """
    COALESCE((SELECT fingerprint FROM agents a WHERE a.agent = e.agent AND a.suite = e.suite), '')
        = e.agent_fingerprint
    AND COALESCE((SELECT fingerprint FROM tasks t WHERE t.suite = e.suite AND t.task_id = e.task_id), '')
        = e.task_fingerprint"""


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
            self._db.executescript(_MIGRATE_FROM_1 if version == 1 else _SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def begin(self, agent: str, suite: str, settings: dict, tasks: Sequence[Task]) -> list[str]:
        """Register what produces this agent's episodes from now on: its settings and the tasks'
        definitions. Returns what changed since the stored results (empty for a first or same run),
        and says it on stderr: rows produced otherwise no longer count, and their episodes run again."""
        stored = self._db.execute("SELECT settings FROM agents WHERE agent = ? AND suite = ?", (agent, suite)).fetchone()
        known = {row[0]: row[1] for row in self._db.execute(
            "SELECT task_id, fingerprint FROM tasks WHERE suite = ?", (suite,))}
        definitions = {task.id: fingerprint(task.to_dict()) for task in tasks}
        redefined = [task_id for task_id, value in definitions.items()
                     if known.get(task_id, UNREGISTERED) not in (UNREGISTERED, value)]
        changed = changes(json.loads(stored[0]), settings) if stored is not None else []
        if stored is None and self._db.execute("SELECT 1 FROM episodes WHERE agent = ? AND suite = ? LIMIT 1",
                                               (agent, suite)).fetchone():
            changed = ["settings: (not recorded) -> recorded"]
        if redefined:
            changed.append(f"{len(redefined)} task(s) defined otherwise ({', '.join(redefined[:3])}"
                           f"{', ...' if len(redefined) > 3 else ''})")
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO agents (agent, suite, fingerprint, settings) VALUES (?, ?, ?, ?)",
                             (agent, suite, fingerprint(settings), json.dumps(settings, sort_keys=True)))
            self._db.executemany("INSERT OR REPLACE INTO tasks (suite, task_id, fingerprint) VALUES (?, ?, ?)",
                                 [(suite, task_id, value) for task_id, value in definitions.items()])
        if changed:
            print(f"{self.path}: the stored episodes of {agent} on {suite} were produced otherwise "
                  f"({'; '.join(changed)}); they no longer count, and their episodes run again", file=sys.stderr)
        return changed

    def add(self, result: EpisodeResult, agent: str, suite: str, error: str | None = None) -> None:
        """Store one finished episode under the registered fingerprints (replacing a stored one with the
        same key) and commit."""
        agent_fingerprint = self._fingerprint("SELECT fingerprint FROM agents WHERE agent = ? AND suite = ?",
                                              (agent, suite))
        task_fingerprint = self._fingerprint("SELECT fingerprint FROM tasks WHERE suite = ? AND task_id = ?",
                                             (suite, result.task_id))
        values = (agent, suite, result.task_id, result.trial, result.category, result.seed, int(result.success),
                  result.steps, result.episode_return, result.wall_time, int(result.died),
                  json.dumps(result.unlocked), json.dumps(result.actions), json.dumps(result.extra), error,
                  datetime.now(timezone.utc).isoformat(timespec="seconds"), agent_fingerprint, task_fingerprint)
        columns = (*_COLUMNS, "agent_fingerprint", "task_fingerprint")
        with self._db:
            self._db.execute(f"INSERT OR REPLACE INTO episodes ({', '.join(columns)}) "
                             f"VALUES ({', '.join('?' * len(columns))})", values)

    def _fingerprint(self, query: str, params: tuple) -> str:
        found = self._db.execute(query, params).fetchone()
        return found[0] if found else UNREGISTERED

    def done_keys(self, agent: str, suite: str) -> set[tuple[str, int]]:
        """(task_id, trial) of every counted episode of this agent on this suite, errors included."""
        cursor = self._db.execute(f"SELECT task_id, trial FROM episodes e WHERE agent = ? AND suite = ? AND {_CURRENT}",
                                  (agent, suite))
        return {(task_id, trial) for task_id, trial in cursor}

    def delete_errors(self, agent: str, suite: str) -> int:
        """Forget the counted episodes that raised, so the next run retries them; returns how many."""
        with self._db:
            cursor = self._db.execute(f"DELETE FROM episodes AS e WHERE agent = ? AND suite = ? AND error IS NOT NULL "
                                      f"AND {_CURRENT}", (agent, suite))
        return cursor.rowcount

    def episodes(self, agent: str | None = None, suite: str | None = None) -> list[EpisodeRow]:
        """Counted episodes (produced with the registered settings), optionally of one agent and/or one
        suite, in key order."""
        where, params = [_CURRENT], []
        for name, value in (("agent", agent), ("suite", suite)):
            if value is not None:
                where.append(f"{name} = ?")
                params.append(value)
        query = f"SELECT {', '.join(_COLUMNS)} FROM episodes e WHERE " + " AND ".join(where)
        query += " ORDER BY agent, suite, task_id, trial"
        return [_row(values) for values in self._db.execute(query, params)]

    def agents_and_suites(self) -> list[tuple[str, str]]:
        return list(self._db.execute(f"SELECT DISTINCT agent, suite FROM episodes e WHERE {_CURRENT} "
                                     f"ORDER BY agent, suite"))

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
