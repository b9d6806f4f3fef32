"""The one process pool: the benchmark runner and the recorder hand it jobs, it hands back results.

Workers are started with "spawn", not "fork": the main process holds a SQLite connection and
tqdm's monitor thread, and model-backed agents hold CUDA state, none of which survives a fork;
spawn also behaves the same on every OS. Each worker builds its worker object (its env and agent)
once and runs every job it is given with it. Workers ignore Ctrl-C (the main process stops the
pool) and exit on their own within a second when the main process dies, even by kill -9, so an
interrupted run never leaves processes behind.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

Job = TypeVar("Job")
ORPHAN_CHECK_SECONDS = 0.5


class Worker(Protocol):
    def run(self, job: Any) -> Any: ...


def run_jobs(jobs: Sequence[Job], make_worker: Callable[..., Worker], worker_args: tuple,
             workers: int) -> Iterator[Any]:
    """`make_worker(*worker_args).run(job)` for every job, in `workers` processes (in this one when
    `workers` is 1), yielding results as they finish. `make_worker` must be importable by name (spawn
    pickles it); it should not raise: a worker that cannot build its agent reports that per job.
    Leaving the iteration early (done, error or Ctrl-C) terminates the workers."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers == 1 or len(jobs) <= 1:
        worker = make_worker(*worker_args)
        yield from (worker.run(job) for job in jobs)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(jobs)), initializer=_start_worker,
                      initargs=(os.getpid(), make_worker, worker_args)) as pool:
        yield from pool.imap_unordered(_run_job, jobs, chunksize=1)


_worker: Worker | None = None


def _start_worker(parent: int, make_worker: Callable[..., Worker], worker_args: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    exit_when_orphaned(parent)
    global _worker
    _worker = make_worker(*worker_args)


def exit_when_orphaned(parent: int) -> None:
    """In a worker process: exit within ORPHAN_CHECK_SECONDS once `parent` is gone (even killed by -9)."""
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(1)


def _run_job(job: Any) -> Any:
    return _worker.run(job)
