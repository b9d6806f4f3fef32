"""Verified levels: per recorded step, the most abstract level a good agent would hand that step to.

The game state at each step is rebuilt by replaying the recorded actions from the task's start in the
deterministic env (a replay that drifts from the recording is an error). At each step, every candidate
level's executor runs that step's label (data.labelling), most abstract first, on a copy of the game,
for at most `budget` primitive steps (the LevelAgent's steps per call); the step gets the first level
whose executor reaches the expert's next subgoal, `raw` when none does.

Subgoals, read from the recording:
- skill, grounding: the expert's next achievement event at or after the step: the achievement counters
  of that event reach the recorded counts (the skill label names that event; the grounding label's
  interaction leads to it), reached at any executor step within the budget. Past the episode's last
  event: the executor stops done where the expert ends the episode (navigation to a point, waiting).
  A death never counts.
- motion: the executor runs its whole count and ends where the expert stands and faces after the
  labelled run. A one-step motion is the raw action in other words (nothing is delegated), so it is
  not a verified motion: the step stays raw.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from crossagent.actions.executor import Executor, with_budget
from crossagent.actions.levels import MODULE_OF
from crossagent.bench.episode import trial_seed
from crossagent.bench.pool import run_jobs
from crossagent.data.labelling import label_episode
from crossagent.data.recording import Cell, StepRecord
from crossagent.envs.crafter_env import ACTION_NAMES, CrafterEnv
from crossagent.envs.crafter_world import DeterministicCrafter
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.tasks.suite import load_suite
from crossagent.tasks.task import CATEGORIES, Task

CANDIDATES = ("skill", "grounding", "motion")  # tried in this order; `raw` when none reaches its subgoal
VERIFIED_LEVELS = (*CANDIDATES, "raw")  # what a step may be verified at
DEFAULT_BUDGET = 200  # agents.level_agent.LevelAgent's max_steps_per_call
MIN_MOTION_STEPS = 2  # a motion of one step delegates nothing: it is the raw action
Steps = Sequence[StepRecord]
Key = tuple[str, int]


class ReplayMismatch(ValueError):
    """Replaying the recorded actions from the task's start does not give the recorded steps."""


@dataclass(frozen=True)
class Subgoal:
    """Achievement counters to reach and/or a cell to stand on (and a direction to face)."""

    achievements: tuple[tuple[str, int], ...] = ()
    position: Cell | None = None
    facing: Cell | None = None

    def reached(self, state: PrivilegedState) -> bool:
        return (all(state.achievements[name] >= count for name, count in self.achievements)
                and (self.position is None or state.position == self.position)
                and (self.facing is None or state.facing == self.facing))


def event_subgoals(steps: Steps) -> list[Subgoal]:
    """Per step, the skill and grounding subgoal: the next achievement event, else the episode's end cell."""
    goals: list[Subgoal] = [Subgoal()] * len(steps)
    upcoming = Subgoal(position=steps[-1].arrived) if steps else Subgoal()
    for i in range(len(steps) - 1, -1, -1):
        if steps[i].events:
            upcoming = Subgoal(tuple((name, steps[i].achievements[name]) for name in steps[i].events))
        goals[i] = upcoming
    return goals


def motion_subgoal(steps: Steps, t: int, count: int) -> Subgoal:
    """Where the expert stands and faces after the `count` steps from step `t`."""
    end = t + count - 1
    return Subgoal(position=steps[end].arrived, facing=steps[end + 1].facing if end + 1 < len(steps) else None)


def verify_episode(task: Task, trial: int, steps: Steps, image_size: int, budget: int = DEFAULT_BUDGET) -> list[str]:
    """The verified level of every step of one recorded episode of `task`."""
    env = CrafterEnv(image_size=image_size, observe_image=False, observe_text=False)
    env.reset(seed=task.world_seed, options={"start": task.start, "dynamics_seed": trial_seed(task, trial)})
    state = env.privileged()
    scratch = DeterministicCrafter(image_size=image_size)
    labels = label_episode(steps, image_size)
    goals = event_subgoals(steps)
    levels = []
    for t, step in enumerate(steps):
        if (state.position, state.facing) != (step.position, step.facing):
            raise ReplayMismatch(f"{task.id} trial {trial} step {t}: the replay stands at {state.position} facing "
                                 f"{state.facing}, the recording at {step.position} facing {step.facing}; was it "
                                 f"recorded with another suite or version of the task?")
        levels.append(_verified_level(state, scratch, labels[t], goals[t], steps, t, image_size, budget))
        env.step(ACTION_NAMES.index(step.action))
        if dict(state.achievements) != dict(step.achievements):
            raise ReplayMismatch(f"{task.id} trial {trial} step {t}: the replay's achievements differ from the "
                                 f"recording's after the step")
    return levels


def _verified_level(state: PrivilegedState, scratch: DeterministicCrafter, labels: dict, goal: Subgoal,
                    steps: Steps, t: int, image_size: int, budget: int) -> str:
    for level in CANDIDATES:
        target = goal
        if level == "motion":
            if labels["motion"].count < MIN_MOTION_STEPS:
                continue
            target = motion_subgoal(steps, t, labels["motion"].count)
        sim = state.copy_into(scratch)
        executor = with_budget(MODULE_OF[level].execute(labels[level], sim, image_size), budget)
        if _reaches(executor, scratch, sim, target, at_end=level == "motion" or not target.achievements):
            return level
    return "raw"


def _reaches(executor: Executor, game: DeterministicCrafter, sim: PrivilegedState, goal: Subgoal,
             at_end: bool) -> bool:
    """Run the executor on `game`: does it reach `goal` at some step (or, `at_end`, when it stops done)?"""
    while True:
        try:
            action = next(executor)
        except StopIteration as stop:
            return at_end and stop.value.ok and goal.reached(sim)
        game.step(action)
        if sim.player.health <= 0:
            return False
        if not at_end and goal.reached(sim):
            executor.close()
            return True


# --- a whole recording ------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifiedEpisode:
    key: Key
    category: str
    levels: tuple[str, ...]
    seconds: float  # verification time (CPU of one worker)


class VerificationWorker:
    """Verifies episodes of the suite's tasks (run by bench.pool.run_jobs)."""

    def __init__(self, suite: str | None, image_size: int, budget: int):
        self.tasks = {task.id: task for task in load_suite(suite).tasks}
        self.image_size, self.budget = image_size, budget

    def run(self, steps: Steps) -> VerifiedEpisode:
        started = time.perf_counter()
        first = steps[0]
        task = self.tasks.get(first.task_id)
        if task is None:
            raise KeyError(f"recorded task {first.task_id!r} is not in the suite; label with the suite it was "
                           "recorded from")
        levels = verify_episode(task, first.trial, steps, self.image_size, self.budget)
        return VerifiedEpisode(first.key, first.category, tuple(levels), time.perf_counter() - started)


def verify_levels(episodes: Sequence[Steps], image_size: int, budget: int = DEFAULT_BUDGET,
                  suite: str | Path | None = None, workers: int = 1) -> tuple[dict[Key, tuple[str, ...]], dict]:
    """Verified levels of every episode, by (task_id, trial), and a report: level shares per category,
    verification time per step."""
    started = time.perf_counter()
    # Workers need the annotations only: images and text views stay here.
    jobs = [tuple(replace(step, image=None, text="") for step in steps) for steps in episodes if steps]
    jobs.sort(key=len, reverse=True)  # longest first, so no worker is left with a long tail
    verified = list(run_jobs(jobs, VerificationWorker, (None if suite is None else str(suite), image_size, budget),
                             workers))
    levels = {episode.key: episode.levels for episode in verified}
    steps = sum(len(episode.levels) for episode in verified)
    seconds = sum(episode.seconds for episode in verified)
    report = {"budget": budget, "steps": steps, "shares": level_shares(verified),
              "seconds_per_step": round(seconds / steps, 4) if steps else 0.0,
              "wall_time": round(time.perf_counter() - started, 2), "workers": workers}
    return levels, report


def level_shares(verified: Sequence[VerifiedEpisode]) -> dict[str, dict]:
    """Per category (and `all`): steps, and the share of them verified at each level."""
    counts = {category: Counter() for category in (*CATEGORIES, "all")}
    for episode in verified:
        for category in (episode.category, "all"):
            counts.setdefault(category, Counter()).update(episode.levels)
    return {category: {"steps": sum(c.values()),
                       **{level: round(c[level] / sum(c.values()), 3) if c else 0.0 for level in VERIFIED_LEVELS}}
            for category, c in counts.items()}


def shares_table(shares: dict[str, dict]) -> list[str]:
    """The shares as aligned text lines, one per category."""
    lines = [f"{'category':10s} {'steps':>6s} " + " ".join(f"{level:>9s}" for level in VERIFIED_LEVELS)]
    for category, row in shares.items():
        lines.append(f"{category:10s} {row['steps']:6d} " + " ".join(f"{row[level]:9.1%}" for level in VERIFIED_LEVELS))
    return lines
