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


def run_episode(env: CrafterEnv, agent: Agent, task: Task, trial: int, record_frames: bool = False,
                frame_size: int = 256) -> EpisodeResult:
    """Run until success, death or the task's budget. Success is checked after every step."""
    started = time.perf_counter()
    seed = trial_seed(task, trial)
    observation, _ = env.reset(seed=task.world_seed, options={"start": task.start, "dynamics_seed": seed})
    agent.reset(task, seed)
    state = env.privileged()
    start = state.progress()
    result = EpisodeResult(task.id, task.category, trial, seed, False, 0, 0.0, 0.0, False)
    if record_frames:
        result.frames.append(env.render(frame_size))
    for _ in range(task.budget):
        action = agent.act(observation, state if agent.uses_privileged_state else None)
        observation, reward, terminated, truncated, _ = env.step(action)
        result.steps += 1
        result.episode_return += reward
        result.actions.append(int(action))
        if record_frames:
            result.frames.append(env.render(frame_size))
        if task.success.check(start, state.progress(), state):
            result.success = True
            break
        if terminated or truncated:
            result.died = terminated
            break
    episode_stats = getattr(agent, "episode_stats", None)
    if episode_stats is not None:
        result.extra = episode_stats()
    final = state.progress()
    result.unlocked = sorted(name for name, count in final.achievements.items() if count > start.achievements[name])
    result.wall_time = time.perf_counter() - started
    return result
