"""Run a benchmark: plan (task, trial) episodes, skip the stored ones, run the rest in parallel.

Workers are started with "spawn", not "fork": the main process holds a SQLite connection
and tqdm's monitor thread, and model-backed agents hold CUDA state, none of which survives
a fork; spawn also behaves the same on every OS. Its start-up cost (importing crafter and
the agent) is paid once per worker, since each worker builds its env and agent once.

Only the main process writes the results file, one committed row per finished episode, so
an interruption loses nothing that finished; rerunning the same command resumes.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
import traceback
from contextlib import closing
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from crossagent.agents.registry import make_agent, require_known_agent
from crossagent.bench.episode import EpisodeResult, make_env, run_episode, trial_seed
from crossagent.bench.metrics import Summary, summarize
from crossagent.bench.results_store import ResultsStore
from crossagent.tasks.task import Task

EpisodeKey = tuple[str, int]  # (task_id, trial)


@dataclass(frozen=True)
class BenchmarkRun:
    planned: int  # episodes the benchmark asks for
    skipped: int  # of those, already stored before this run
    ran: int  # run now
    errors: int  # of those run now, episodes that raised
    summary: Summary  # metrics of the planned episodes


def plan_episodes(tasks: Sequence[Task], trials: int, done: Collection[EpisodeKey] = (),
                  first_trial: int = 0) -> list[tuple[Task, int]]:
    """The (task, trial) pairs still to run, ordered by world seed so a worker's snapshot cache hits."""
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    todo = [(task, trial) for task in tasks for trial in range(first_trial, first_trial + trials)
            if (task.id, trial) not in done]
    return sorted(todo, key=lambda item: (item[0].world_seed, item[0].id, item[1]))


def run_benchmark(agent_name: str, tasks: Sequence[Task], trials: int, workers: int, store_path: str | Path,
                  suite_name: str, progress: bool = True, mini_ids: Collection[str] = (),
                  retry_errors: bool = False, first_trial: int = 0) -> BenchmarkRun:
    """Run every missing episode of `tasks` x `trials` and store each as it finishes.

    Trials are numbered from `first_trial`; each number picks the episode's dynamics seed.

    `workers=1` runs in this process. An episode that raises is stored with its traceback
    (a failure) and the run goes on; `retry_errors` runs such stored episodes again.
    """
    require_known_agent(agent_name)
    if not tasks:
        raise ValueError("no tasks to run")
    planned = {(task.id, trial) for task in tasks for trial in range(first_trial, first_trial + trials)}
    with ResultsStore(store_path) as store:
        store.set_mini_ids(suite_name, tuple(mini_ids))
        if retry_errors:
            store.delete_errors(agent_name, suite_name)
        todo = plan_episodes(tasks, trials, store.done_keys(agent_name, suite_name), first_trial)
        errors = 0
        bar = tqdm(total=len(todo), unit="ep", desc=f"{agent_name} on {suite_name}", disable=not progress,
                   dynamic_ncols=True)
        # closing(): an exception here (Ctrl-C included) shuts the worker pool down at once.
        with bar, closing(_run_all(agent_name, tasks, todo, workers)) as results:
            for result, error in results:
                store.add(result, agent_name, suite_name, error)
                errors += error is not None
                bar.update(1)
                bar.set_postfix(errors=errors, refresh=False)
        rows = [row for row in store.episodes(agent_name, suite_name) if (row.task_id, row.trial) in planned]
    summary = summarize(rows, agent_name, suite_name, mini_ids)
    return BenchmarkRun(len(planned), len(planned) - len(todo), len(todo), errors, summary)


def _run_all(agent_name: str, tasks: Sequence[Task], todo: list[tuple[Task, int]],
             workers: int) -> Iterator[tuple[EpisodeResult, str | None]]:
    keys = [(task.id, trial) for task, trial in todo]
    if workers <= 1 or len(keys) <= 1:
        worker = EpisodeWorker(agent_name, tasks)
        yield from (worker.run(*key) for key in keys)
        return
    context = multiprocessing.get_context("spawn")
    # Leaving the `with` (done, error or Ctrl-C) terminates the workers.
    with context.Pool(min(workers, len(keys)), initializer=_init_worker, initargs=(agent_name, tuple(tasks))) as pool:
        yield from pool.imap_unordered(_run_in_worker, keys, chunksize=1)


class EpisodeWorker:
    """Builds its env and agent on first use and reuses them for every episode it runs."""

    def __init__(self, agent_name: str, tasks: Sequence[Task]):
        self.agent_name = agent_name
        self.tasks = {task.id: task for task in tasks}
        self._env = None
        self._agent = None

    def run(self, task_id: str, trial: int) -> tuple[EpisodeResult, str | None]:
        """The episode's result and None, or a failed result and the traceback if it raised."""
        task = self.tasks[task_id]
        started = time.perf_counter()
        try:
            if self._agent is None:
                # Built here, inside the try, so a broken agent is a stored error, not a dead pool.
                self._agent = make_agent(self.agent_name)
                self._env = make_env(self._agent)
            return run_episode(self._env, self._agent, task, trial), None
        except Exception:
            failed = EpisodeResult(task.id, task.category, trial, trial_seed(task, trial), success=False, steps=0,
                                   episode_return=0.0, wall_time=time.perf_counter() - started, died=False)
            return failed, traceback.format_exc()


_worker: EpisodeWorker | None = None


def _init_worker(agent_name: str, tasks: tuple[Task, ...]) -> None:
    # Ctrl-C is the main process's to handle: it stops the pool; workers would only print tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _worker
    _worker = EpisodeWorker(agent_name, tasks)


def _run_in_worker(key: EpisodeKey) -> tuple[EpisodeResult, str | None]:
    return _worker.run(*key)
