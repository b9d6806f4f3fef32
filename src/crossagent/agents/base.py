"""The agent interface every policy, expert and baseline implements."""

from __future__ import annotations

from typing import Protocol

from crossagent.envs.crafter_env import Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.tasks.task import Task


class Agent(Protocol):
    name: str
    # Experts and executors read the true state; policies must not.
    uses_privileged_state: bool
    needs_image: bool
    needs_text: bool

    def reset(self, task: Task, seed: int) -> None:
        """Start an episode of `task`; `seed` makes any randomness of the agent reproducible."""

    def act(self, observation: Observation, state: PrivilegedState | None) -> int:
        """Return the next primitive action index. `state` is None unless uses_privileged_state."""
