"""Prove tasks solvable: run the expert on each from its start, with dice the benchmark never uses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crossagent.bench.results_store import EpisodeRow, ResultsStore
from crossagent.bench.runner import run_benchmark
from crossagent.tasks.task import Task

# Validation dice differ from every benchmark trial (0, 1, 2, ...), so the benchmark's
# expert score is a measurement, not a replay of the validation run.
VALIDATION_TRIAL = 1000
VALIDATION_SUITE = "validation"


def expert_runs(tasks: Sequence[Task], store_path: Path, workers: int, progress: bool = True) -> dict[str, EpisodeRow]:
    """The expert's validation episode per task id. Resumable via the store."""
    run_benchmark("expert", tasks, trials=1, first_trial=VALIDATION_TRIAL, workers=workers, store_path=store_path,
                  suite_name=VALIDATION_SUITE, progress=progress)
    wanted = {task.id for task in tasks}
    with ResultsStore(store_path) as store:
        rows = [r for r in store.episodes("expert", VALIDATION_SUITE) if r.task_id in wanted and r.trial == VALIDATION_TRIAL]
    return {row.task_id: row for row in rows}


def solved_steps(row: EpisodeRow) -> int | None:
    """Steps the expert needed; None where it failed or raised."""
    return row.steps if row.success and row.error is None else None


def expert_steps(tasks: Sequence[Task], store_path: Path, workers: int, progress: bool = True) -> dict[str, int | None]:
    """Steps the expert needed per task id; None where it failed or raised."""
    return {task_id: solved_steps(row) for task_id, row in expert_runs(tasks, store_path, workers, progress).items()}
