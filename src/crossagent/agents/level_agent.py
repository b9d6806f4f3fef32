"""An agent over a stream of replies: parse each reply, pick the level to run, run its executor.

Modes (one reply stream, three ways to act on it):
- slow:    execute the `Action:` line (upper lines are the model's thought); one step per reply.
- fast:    execute the most concrete upper level (motion, grounding, skill) with its executor;
           a reply with only `Action:` runs that. Re-query every `requery_every` steps.
- dynamic: execute whatever level the reply ends with (its most concrete line).
A reply whose chosen line is missing or malformed is invalid: the agent waits one step (noop).

`act()` returns the running executor's next action at once; when a reply is due it returns a
Decision (agents.base) that asks the policy, starts the executor of the chosen level, and returns
its first action. The episode loop answers the policy's requests (bench.episode_loop).

Per primitive step it counts which levels the active reply contained and which level
executed; `episode_stats()` returns those counts for the results store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from typing import Protocol

from crossagent.actions.chain import Reply, parse_reply
from crossagent.actions.executor import Executor, Stop, with_budget
from crossagent.actions.levels import UPPER_LEVELS
from crossagent.agents.base import Decision, ReplyDecision
from crossagent.envs.crafter_env import ACTION_NAMES, Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.executors.registry import SCRIPTED, Executors
from crossagent.models.reply_request import ReplyRequest, Sample
from crossagent.tasks.task import Task

MODES = ("slow", "fast", "dynamic")
NOOP = ACTION_NAMES.index("noop")
INVALID = "invalid"
REQUERY_EVERY = 4  # fast/dynamic: an upper level's executor runs at most k steps before the next reply
MAX_CALLS_PER_STEP = 3  # executors that stop at once may not loop the policy forever


class ReplyPolicy(Protocol):
    name: str
    # An oracle reads the true state; a model never does (it gets None).
    uses_privileged_state: bool

    def reset(self, task: Task, seed: int) -> None: ...

    def reply(self, observation: Observation, state: PrivilegedState | None) -> ReplyDecision:
        """Yields the model requests the reply needs (a scripted policy yields none) and returns the reply."""


def chosen_level(reply: Reply, mode: str) -> str | None:
    """The level this mode executes for this reply, or None if the reply cannot execute."""
    if mode == "slow":
        level = "raw" if "raw" in reply.levels else None
    elif mode == "fast":
        upper = [level for level in reply.levels if level in UPPER_LEVELS]
        level = upper[-1] if upper else ("raw" if "raw" in reply.levels else None)
    else:
        level = reply.executed_level
    return level if level is not None and level in reply.actions else None


class LevelAgent:
    """Scripted executors plan paths on the true state, so this agent receives it; only an oracle policy
    is handed it in turn. Learned executors (`executors`) read only the text view rendered from it."""

    uses_privileged_state = True

    def __init__(self, policy: ReplyPolicy, mode: str = "dynamic", requery_every: int | None = None,
                 max_steps_per_call: int = 200, image_size: int = 64, executors: Executors = SCRIPTED):
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        self.policy = policy
        self.mode = mode
        self.requery_every = requery_every
        self.max_steps_per_call = max_steps_per_call
        self.image_size = image_size
        self.executors = executors
        self.name = f"{policy.name}@{mode}"
        self.needs_image = getattr(policy, "needs_image", False)
        self.needs_text = getattr(policy, "needs_text", False)
        self._executor: Executor | None = None
        self._reply: Reply | None = None
        self._level: str | None = None
        self._steps_this_call = 0
        self._reset_stats()

    def _reset_stats(self) -> None:
        self.calls = 0
        self.contained: Counter[str] = Counter()
        self.executed: Counter[str] = Counter()
        self.stops: Counter[str] = Counter()
        self.last_stop: Stop | None = None

    def reset(self, task: Task, seed: int) -> None:
        self.policy.reset(task, seed)
        self._executor = None
        self._reset_stats()

    def act(self, observation: Observation, state: PrivilegedState | None) -> int | Decision:
        if state is None:
            raise RuntimeError("a LevelAgent needs the privileged state for its executors")
        if self._executor is not None and not self._requery_due():
            try:
                action = next(self._executor)
            except StopIteration as stop:
                self._finish_call(stop.value)
            else:
                self._steps_this_call += 1
                return self._count_step(action, self._level)
        return self._ask(observation, state)

    def _ask(self, observation: Observation, state: PrivilegedState) -> Decision:
        for _ in range(MAX_CALLS_PER_STEP):
            yield from self._start_call(observation, state)
            if self._executor is None:
                return self._count_step(NOOP, INVALID)
            try:
                action = next(self._executor)
            except StopIteration as stop:  # done or failed at once: ask again
                self._finish_call(stop.value)
                continue
            self._steps_this_call += 1
            return self._count_step(action, self._level)
        return self._count_step(NOOP, self._level or INVALID)

    def _requery_due(self) -> bool:
        return self.requery_every is not None and self._steps_this_call >= self.requery_every

    def _start_call(self, observation: Observation, state: PrivilegedState) -> Generator[ReplyRequest, Sample, None]:
        if self._executor is not None:
            self._executor.close()
            self._finish_call(Stop("budget", "re-queried"))
        text = yield from self.policy.reply(observation, state if self.policy.uses_privileged_state else None)
        self.calls += 1
        self._reply = parse_reply(text)
        self._level = chosen_level(self._reply, self.mode)
        self._steps_this_call = 0
        if self._level is None:
            self._executor = None
            return
        action = self._reply.action(self._level)
        self._executor = with_budget(self.executors.execute_fn(self._level)(action, state, self.image_size),
                                     self.max_steps_per_call)

    def _finish_call(self, stop: Stop) -> None:
        self._executor = None
        self.last_stop = stop
        self.stops[stop.kind] += 1

    def _count_step(self, action: int, executed: str | None) -> int:
        for level in (self._reply.levels if self._reply else ()):
            self.contained[level] += 1
        self.executed[executed or INVALID] += 1
        if executed == INVALID:
            self._reply = None
        return action

    def episode_stats(self) -> dict:
        steps = sum(self.executed.values())
        return {
            "mode": self.mode,
            "calls": self.calls,
            "steps": steps,
            "steps_per_call": steps / self.calls if self.calls else 0.0,
            "invalid_steps": self.executed[INVALID],
            "contained": dict(self.contained),
            "executed": dict(self.executed),
            "stops": dict(self.stops),
        }
