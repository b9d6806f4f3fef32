"""Run a benchmark: plan (task, trial) episodes, skip the stored ones, run the rest in parallel.

The episodes run in bench.pool's worker processes, each through the episode loop
(bench.episode_loop), which turns an episode that raises into a failure with its traceback. Only
the main process writes the results file, one committed row per finished episode, so an
interruption loses nothing that finished; rerunning the same command resumes.
"""

from __future__ import annotations

from contextlib import closing
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from crossagent.agents.registry import make_agent, require_known_agent
from crossagent.bench.episode import Episode, EpisodeResult, make_env
from crossagent.bench.episode_loop import run_episodes
from crossagent.bench.metrics import Summary, summarize
from crossagent.bench.pool import run_jobs
from crossagent.bench.results_store import ResultsStore
from crossagent.executors.registry import SCRIPTED, Executors
from crossagent.fingerprint import directory_hash
from crossagent.folder_lock import writes_folder
from crossagent.progress import progress_bar
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


@writes_folder(lambda call: Path(call["store_path"]).parent)
def run_benchmark(agent_name: str, tasks: Sequence[Task], trials: int, workers: int, store_path: str | Path,
                  suite_name: str, progress: bool = True, mini_ids: Collection[str] = (),
                  retry_errors: bool = False, first_trial: int = 0, executors: Executors = SCRIPTED) -> BenchmarkRun:
    """Run every missing episode of `tasks` x `trials` and store each as it finishes.

    Learned `executors` store the episodes under `executors.agent_name(agent_name)`, keyed by the
    checkpoints' content, so retrained executors run again.

    Trials are numbered from `first_trial`; each number picks the episode's dynamics seed.

    `workers=1` runs in this process. An episode that raises is stored with its traceback
    (a failure) and the run goes on; `retry_errors` runs such stored episodes again.
    """
    require_known_agent(agent_name)
    if not tasks:
        raise ValueError("no tasks to run")
    make_agent(agent_name, executors)  # a wrong combination fails here, not per episode
    if agent_name.startswith("oracle:"):
        executors.execute_fn(agent_name.removeprefix("oracle:"))  # and so does a missing checkpoint
    planned = {(task.id, trial) for task in tasks for trial in range(first_trial, first_trial + trials)}
    stored_name = executors.agent_name(agent_name)
    with ResultsStore(store_path) as store:
        store.set_mini_ids(suite_name, tuple(mini_ids))
        store.begin(stored_name, suite_name, _settings(agent_name, executors), tasks)
        if retry_errors:
            store.delete_errors(stored_name, suite_name)
        todo = plan_episodes(tasks, trials, store.done_keys(stored_name, suite_name), first_trial)
        errors = 0
        bar = progress_bar(len(todo), f"{stored_name} on {suite_name}", enabled=progress)
        # closing(): an exception here (Ctrl-C included) shuts the worker pool down at once.
        with bar, closing(_run_all(agent_name, executors, tasks, todo, workers)) as results:
            for result, error in results:
                store.add(result, stored_name, suite_name, error)
                errors += error is not None
                bar.update(1)
                bar.set_postfix(errors=errors, refresh=False)
        rows = [row for row in store.episodes(stored_name, suite_name) if (row.task_id, row.trial) in planned]
    summary = summarize(rows, stored_name, suite_name, mini_ids)
    return BenchmarkRun(len(planned), len(planned) - len(todo), len(todo), errors, summary)


def _settings(agent_name: str, executors: Executors) -> dict:
    """What produces the stored episodes. Scripted executors add nothing, so stores from before learned
    executors existed stay valid."""
    level = agent_name.partition(":")[2]
    if not executors.reads_checkpoint(level):
        return {"agent": agent_name}
    return {"agent": agent_name, "executors": executors.kind,
            "checkpoint": directory_hash(Path(executors.checkpoints) / level)}


def _run_all(agent_name: str, executors: Executors, tasks: Sequence[Task], todo: list[tuple[Task, int]],
             workers: int) -> Iterator[tuple[EpisodeResult, str | None]]:
    jobs = [[(task.id, trial)] for task, trial in todo]
    for outcomes in run_jobs(jobs, EpisodeWorker, (agent_name, tuple(tasks), executors), workers):
        yield from outcomes


class EpisodeWorker:
    """Builds its env and agent on first use and reuses them for every episode it runs."""

    def __init__(self, agent_name: str, tasks: Sequence[Task], executors: Executors = SCRIPTED):
        self.agent_name = agent_name
        self.executors = executors
        self.tasks = {task.id: task for task in tasks}
        self._env = None
        self._agent = None

    def run(self, keys: list[EpisodeKey]) -> list[tuple[EpisodeResult, str | None]]:
        """Each episode's result, and the traceback if it raised (then the result is a failure)."""
        outcomes = []
        run_episodes([(self.tasks[task_id], trial) for task_id, trial in keys], self._episode,
                     lambda finished: outcomes.append((finished.result, finished.error)))
        return outcomes

    def _episode(self, index: int, task: Task, trial: int) -> Episode:
        if self._agent is None:  # built here, so a broken agent is a stored error per episode
            self._agent = make_agent(self.agent_name, self.executors)
            self._env = make_env(self._agent)
        return Episode(self._env, self._agent, task, trial)
