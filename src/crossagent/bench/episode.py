"""One episode of one task: reset to the task's start, let the agent act, judge success."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from crossagent.agents.base import Agent
from crossagent.envs.crafter_env import CrafterEnv
from crossagent.tasks.task import Task


def trial_seed(task: Task, trial: int) -> int:
    """The dynamics seed of a trial: the map is the task's, the dice differ per trial."""
    return (task.world_seed * 1_000_003 + trial * 7_919 + 17) % (2**31 - 1)


@dataclass
class EpisodeResult:
    task_id: str
    category: str
    trial: int
    seed: int
    success: bool
    steps: int
    episode_return: float
    wall_time: float
    died: bool
    unlocked: list[str] = field(default_factory=list)  # achievements gained during the episode
    actions: list[int] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # per-episode statistics, stored as JSON with the result


def make_env(agent: Agent, image_size: int = 64) -> CrafterEnv:
    return CrafterEnv(image_size=image_size, observe_image=agent.needs_image, observe_text=agent.needs_text)


class Episode:
    """One episode in progress: reset to the task's start, then one `step()` per primitive action.

    Ends at success (checked after every step), death or the task's budget. `run_episode` drives
    one; a lockstep runner drives many side by side.
    """

    def __init__(self, env: CrafterEnv, agent: Agent, task: Task, trial: int, record_frames: bool = False,
                 frame_size: int = 256):
        self._started = time.perf_counter()
        self.env, self.agent, self.task = env, agent, task
        self.record_frames, self.frame_size = record_frames, frame_size
        seed = trial_seed(task, trial)
        self.observation, _ = env.reset(seed=task.world_seed, options={"start": task.start, "dynamics_seed": seed})
        agent.reset(task, seed)
        self.state = env.privileged()
        self.start = self.state.progress()
        self.result = EpisodeResult(task.id, task.category, trial, seed, False, 0, 0.0, 0.0, False)
        self.done = False
        if record_frames:
            self.result.frames.append(env.render(frame_size))

    def step(self) -> bool:
        """One agent action and env step; True once the episode is over."""
        result = self.result
        action = self.agent.act(self.observation, self.state if self.agent.uses_privileged_state else None)
        self.observation, reward, terminated, truncated, _ = self.env.step(action)
        result.steps += 1
        result.episode_return += reward
        result.actions.append(int(action))
        if self.record_frames:
            result.frames.append(self.env.render(self.frame_size))
        if self.task.success.check(self.start, self.state.progress(), self.state):
            result.success = True
        elif terminated or truncated:
            result.died = terminated
        self.done = result.success or terminated or truncated or result.steps >= self.task.budget
        return self.done

    def finish(self) -> EpisodeResult:
        result = self.result
        episode_stats = getattr(self.agent, "episode_stats", None)
        if episode_stats is not None:
            result.extra = episode_stats()
        final = self.state.progress()
        result.unlocked = sorted(name for name, count in final.achievements.items()
                                 if count > self.start.achievements[name])
        result.wall_time = time.perf_counter() - self._started
        return result


def run_episode(env: CrafterEnv, agent: Agent, task: Task, trial: int, record_frames: bool = False,
                frame_size: int = 256) -> EpisodeResult:
    """Run one episode until success, death or the task's budget."""
    episode = Episode(env, agent, task, trial, record_frames, frame_size)
    while not episode.step():
        pass
    return episode.finish()
