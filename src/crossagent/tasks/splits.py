"""Train / held-out split of a suite: the mini set and a quarter of the rest are held out.

The split is by task id (a hash), so it is stable as the suite grows and never puts a mini
task into training.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from itertools import chain, zip_longest

from crossagent.tasks.suite import TaskSuite
from crossagent.tasks.task import CATEGORIES, Task

HELDOUT_SHARE = 4  # one task in this many is held out, besides the mini set


def is_heldout(task: Task, suite: TaskSuite) -> bool:
    return task.id in suite.mini_ids or zlib.crc32(task.id.encode()) % HELDOUT_SHARE == 0


def train_tasks(suite: TaskSuite, per_category: int | None = None) -> tuple[Task, ...]:
    """Training tasks; with `per_category`, that many of each category, spread over its templates.

    Taking the first N in id order would train on one or two templates per category (all the
    `collect_wood` variants, say) and test on others; the spread takes one task of every
    template in turn (each template cycling through its variants), in id order.
    """
    tasks = tuple(task for task in suite.tasks if not is_heldout(task, suite))
    return tasks if per_category is None else sample_per_category(tasks, per_category)


def sample_per_category(tasks: Sequence[Task], per_category: int) -> tuple[Task, ...]:
    """`per_category` tasks of each category, spread over its templates (see `train_tasks`)."""
    return tuple(task for category in CATEGORIES
                 for task in _spread([t for t in tasks if t.category == category])[:per_category])


def _spread(tasks: Sequence[Task]) -> list[Task]:
    """Round-robin over templates, each template round-robin over its variants (ids: category.template.variant.wN)."""
    variants: dict[str, dict[str, list[Task]]] = {}
    for task in sorted(tasks, key=lambda t: t.id):
        _, template, variant, _ = task.id.split(".")
        variants.setdefault(template, {}).setdefault(variant, []).append(task)
    per_template = [_round_robin(by_variant.values()) for by_variant in variants.values()]
    return _round_robin(per_template)


def _round_robin(lists: Iterable[Sequence[Task]]) -> list[Task]:
    return [task for task in chain.from_iterable(zip_longest(*lists)) if task is not None]


def heldout_tasks(suite: TaskSuite, per_category: int | None = None) -> tuple[Task, ...]:
    """Held-out tasks; with `per_category`, the mini set plus that many others per category, spread
    over templates as in `train_tasks` (a cheaper evaluation that still reaches past the mini set)."""
    tasks = [task for task in suite.tasks if is_heldout(task, suite)]
    if per_category is None:
        return tuple(tasks)
    others = sample_per_category([task for task in tasks if task.id not in suite.mini_ids], per_category)
    return tuple(task for category in CATEGORIES
                 for task in [*(t for t in suite.mini if t.category == category),
                              *(t for t in others if t.category == category)])
