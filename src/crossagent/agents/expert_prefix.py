"""An episode that starts with the expert's first steps, then hands over to another agent.

GRPO learns nothing from a task whose every rollout fails (its group's returns are all equal). Starting some
groups part of the way along the expert's own solution of the same trial (a reverse curriculum from a
demonstration, as in Salimans and Chen 2018, "Learning Montezuma's Revenge from a single demonstration")
leaves the policy the task's last decisions, which it can get right by chance: those groups have a signal.
"""

from __future__ import annotations

from crossagent.agents.base import Agent, Decision
from crossagent.agents.expert import ExpertAgent
from crossagent.envs.crafter_env import Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.tasks.task import Task


class ExpertPrefixAgent:
    """The expert for the first `prefix_steps` actions, then `agent`. Both read the true state: the expert plans
    on it, and `agent` gets it only if it asks for it itself."""

    uses_privileged_state = True

    def __init__(self, agent: Agent, prefix_steps: int):
        if prefix_steps < 0:
            raise ValueError(f"prefix_steps must be 0 or more, got {prefix_steps}")
        self.agent, self.prefix_steps = agent, prefix_steps
        self.name = agent.name
        self.needs_image, self.needs_text = agent.needs_image, agent.needs_text
        self._expert = ExpertAgent()
        self._taken = 0

    def reset(self, task: Task, seed: int) -> None:
        self._expert.reset(task, seed)
        self.agent.reset(task, seed)
        self._taken = 0

    def act(self, observation: Observation, state: PrivilegedState | None) -> int | Decision:
        if self._taken < self.prefix_steps:
            self._taken += 1
            return self._expert.act(observation, state)
        return self.agent.act(observation, state if self.agent.uses_privileged_state else None)

    def episode_stats(self) -> dict:
        """The agent's own statistics (its steps exclude the prefix), and the prefix's length."""
        stats = getattr(self.agent, "episode_stats", None)
        return {**(stats() if stats is not None else {}), "expert_prefix_steps": self.prefix_steps}
