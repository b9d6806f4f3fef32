"""The random baseline: a uniformly random primitive action every step."""

from __future__ import annotations

import numpy as np

from crossagent.envs.crafter_env import ACTION_NAMES, Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.tasks.task import Task


class RandomAgent:
    name = "random"
    uses_privileged_state = False
    needs_image = False
    needs_text = False

    def __init__(self) -> None:
        self._rng = np.random.default_rng(0)

    def reset(self, task: Task, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, observation: Observation, state: PrivilegedState | None) -> int:
        return int(self._rng.integers(len(ACTION_NAMES)))
