"""Replay a stored episode: re-run its actions from the task's start, render frames, write a GIF.

The env is deterministic given the world seed and the dynamics seed, so the stored actions
must reproduce the stored outcome; a replay that does not is an error, not a picture.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio

from crossagent.bench.crafter_score import CRAFTER_SUITE, default_task_by_id
from crossagent.bench.episode import EpisodeResult, trial_seed
from crossagent.bench.episode_loop import run_episode
from crossagent.bench.results_store import RESULTS_FILE, EpisodeRow, ResultsStore
from crossagent.envs.crafter_env import CrafterEnv, Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.tasks.suite import load_suite
from crossagent.tasks.task import Task


class ReplayMismatch(ValueError):
    """The replayed episode differs from the stored one."""


class ScriptedAgent:
    """Plays a fixed list of actions; asking for one more is a mismatch."""

    name = "replay"
    uses_privileged_state = False
    needs_image = False
    needs_text = False

    def __init__(self, actions: list[int]):
        self.actions = actions
        self._next = 0

    def reset(self, task: Task, seed: int) -> None:
        self._next = 0

    def act(self, observation: Observation, state: PrivilegedState | None) -> int:
        if self._next >= len(self.actions):
            raise ReplayMismatch(f"the stored {len(self.actions)} actions ran out but the replayed episode "
                                 "had not ended (no success, death or budget yet)")
        self._next += 1
        return self.actions[self._next - 1]


def find_episode(store: ResultsStore, agent: str, task_id: str, trial: int, suite: str | None = None) -> EpisodeRow:
    found = [row for row in store.episodes(agent, suite) if row.task_id == task_id and row.trial == trial]
    if not found:
        raise KeyError(f"{store.path}: no stored episode of agent {agent!r}, task {task_id!r}, trial {trial}"
                       + (f" on suite {suite!r}" if suite else ""))
    if len(found) > 1:
        raise ValueError(f"task {task_id!r} trial {trial} of {agent!r} is stored for several suites "
                         f"({', '.join(row.suite for row in found)}); pick one with --suite")
    return found[0]


def task_for(row: EpisodeRow, suite_file: str | Path | None = None) -> Task:
    """The stored episode's task: a default Crafter episode, or a task of the suite file."""
    if row.suite == CRAFTER_SUITE:
        return default_task_by_id(row.task_id)
    suite = load_suite(suite_file)
    if suite.name != row.suite:
        raise ValueError(f"the episode was stored for suite {row.suite!r} but the suite file holds {suite.name!r}; "
                         "pass that suite's file with --suite-file")
    return suite.task(row.task_id)


def replay_episode(row: EpisodeRow, task: Task, frame_size: int = 256) -> EpisodeResult:
    """Re-run the stored actions with frames; raise ReplayMismatch unless the outcome is the stored one."""
    if row.error is not None:
        raise ValueError(f"task {row.task_id!r} trial {row.trial} raised when it ran; there is nothing to replay:\n"
                         f"{row.error}")
    if trial_seed(task, row.trial) != row.seed:
        raise ReplayMismatch(f"stored seed {row.seed} is not this trial's seed {trial_seed(task, row.trial)}")
    env = CrafterEnv(observe_image=False, observe_text=False)
    replayed = run_episode(env, ScriptedAgent(row.actions), task, row.trial, record_frames=True, frame_size=frame_size)
    stored = (row.success, row.steps, row.died)
    now = (replayed.success, replayed.steps, replayed.died)
    if now != stored or replayed.steps != len(row.actions):
        raise ReplayMismatch(f"replay of {row.task_id!r} trial {row.trial} gave success={now[0]} steps={now[1]} "
                             f"died={now[2]}, stored success={stored[0]} steps={stored[1]} died={stored[2]} "
                             f"with {len(row.actions)} actions")
    return replayed


def write_gif(frames: list, path: str | Path, fps: int = 10) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, frames, duration=1000 / fps, loop=0)
    return path


def replay(results_dir: str | Path, agent: str, task_id: str, trial: int, out: str | Path,
           suite: str | None = None, suite_file: str | Path | None = None, frame_size: int = 256,
           fps: int = 10) -> EpisodeResult:
    """Replay one stored episode of results_dir's store into the GIF `out`; returns the replayed result."""
    store_path = Path(results_dir) / RESULTS_FILE
    if not store_path.exists():
        raise FileNotFoundError(f"no results file {store_path}")
    with ResultsStore(store_path) as store:
        row = find_episode(store, agent, task_id, trial, suite)
    replayed = replay_episode(row, task_for(row, suite_file), frame_size)
    write_gif(replayed.frames, out, fps)
    return replayed
