"""The agent interface every policy, expert and baseline implements."""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

from crossagent.envs.crafter_env import Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.models.reply_request import ReplyRequest, Sample
from crossagent.tasks.task import Task

# An action that needs model replies first: it yields each request, is sent the sample that answers
# it, and returns the primitive action. The episode loop (bench.episode_loop) answers the requests
# of every waiting episode with one sampler call.
Decision = Generator[ReplyRequest, Sample, int]
# A reply policy's reply: yields the requests it needs answered (none, for a scripted policy) and
# returns the reply text.
ReplyDecision = Generator[ReplyRequest, Sample, str]


class Agent(Protocol):
    name: str
    # Experts and executors read the true state; policies must not.
    uses_privileged_state: bool
    needs_image: bool
    needs_text: bool

    def reset(self, task: Task, seed: int) -> None:
        """Start an episode of `task`; `seed` makes any randomness of the agent reproducible."""

    def act(self, observation: Observation, state: PrivilegedState | None) -> int | Decision:
        """The next primitive action index, or a Decision if a model must reply first.
        `state` is None unless uses_privileged_state."""
