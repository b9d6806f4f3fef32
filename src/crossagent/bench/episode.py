"""One episode of one task: reset to the task's start, then the agent's actions, success judged every step."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from crossagent.agents.base import Agent, Decision
from crossagent.envs.crafter_env import CrafterEnv, Observation
from crossagent.envs.privileged_state import PrivilegedState
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

    @classmethod
    def failed(cls, task: Task, trial: int, wall_time: float = 0.0) -> "EpisodeResult":
        """The result of an episode that raised: a failure with no steps."""
        return cls(task.id, task.category, trial, trial_seed(task, trial), False, 0, 0.0, wall_time, False)


class StepHook(Protocol):
    """Watches an episode's steps (data.recording's StepRecorder is one): the state before each
    action, then the state after it. `state` is a live view of the game."""

    def before(self, observation: Observation, state: PrivilegedState, action: int) -> None: ...

    def after(self, state: PrivilegedState) -> None: ...


def make_env(agent: Agent, image_size: int = 64) -> CrafterEnv:
    return CrafterEnv(image_size=image_size, observe_image=agent.needs_image, observe_text=agent.needs_text)


class Episode:
    """One episode in progress: `decide()` asks the agent for its action (or for a model reply first),
    `advance(action)` steps the world. Ends at success (checked after every step), death or the
    task's budget. bench.episode_loop drives episodes; nothing else does."""

    def __init__(self, env: CrafterEnv, agent: Agent, task: Task, trial: int, hook: StepHook | None = None,
                 record_frames: bool = False, frame_size: int = 256):
        self._started = time.perf_counter()
        self.env, self.agent, self.task, self.trial, self.hook = env, agent, task, trial, hook
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

    def decide(self) -> int | Decision:
        """The agent's next primitive action, or a Decision that asks for model replies first."""
        return self.agent.act(self.observation, self.state if self.agent.uses_privileged_state else None)

    def advance(self, action: int) -> bool:
        """Step the world with `action`; True once the episode is over."""
        result = self.result
        if self.hook is not None:
            self.hook.before(self.observation, self.state, action)
        self.observation, reward, terminated, truncated, _ = self.env.step(action)
        if self.hook is not None:
            self.hook.after(self.state)
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
        result.wall_time = self.elapsed()
        return result

    def elapsed(self) -> float:
        return time.perf_counter() - self._started
