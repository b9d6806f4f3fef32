"""Train / held-out split of a suite: the mini set and a quarter of the rest are held out.

The split is by task id (a hash), so it is stable as the suite grows and never puts a mini
task into training.
"""

from __future__ import annotations

import zlib

from crossagent.tasks.suite import TaskSuite
from crossagent.tasks.task import CATEGORIES, Task

HELDOUT_SHARE = 4  # one task in this many is held out, besides the mini set


def is_heldout(task: Task, suite: TaskSuite) -> bool:
    return task.id in suite.mini_ids or zlib.crc32(task.id.encode()) % HELDOUT_SHARE == 0


def train_tasks(suite: TaskSuite, per_category: int | None = None) -> tuple[Task, ...]:
    """Training tasks, optionally the first `per_category` of each category (in id order)."""
    tasks = [task for task in suite.tasks if not is_heldout(task, suite)]
    if per_category is None:
        return tuple(tasks)
    return tuple(task for category in CATEGORIES for task in [t for t in tasks if t.category == category][:per_category])


def heldout_tasks(suite: TaskSuite) -> tuple[Task, ...]:
    return tuple(task for task in suite.tasks if is_heldout(task, suite))
