"""What every level's executor and every expert behaviour is: a generator of primitive actions that
says why it stopped."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass


@dataclass(frozen=True)
class Stop:
    kind: str  # "done", "failed" or "budget"
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "done"


# Yields primitive action indices one at a time; returns the Stop. A caller may stop
# pulling at any step (re-query after k steps); the generator holds no other resources.
Executor = Generator[int, None, Stop]


def done(reason: str = "done") -> Stop:
    return Stop("done", reason)


def failed(reason: str) -> Stop:
    return Stop("failed", reason)


def with_budget(executor: Executor, budget: int) -> Executor:
    """Run `executor` for at most `budget` primitive steps."""
    for step in range(budget + 1):
        try:
            action = next(executor)
        except StopIteration as stop:
            return stop.value
        if step == budget:  # it wanted one more step than allowed
            executor.close()
            return Stop("budget", f"out of budget after {budget} steps")
        yield action
    raise AssertionError("unreachable")
