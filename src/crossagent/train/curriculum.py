"""Which training tasks a GRPO iteration draws: uniformly, or favouring the tasks whose groups still teach.

A group whose returns are all equal (every episode succeeded, or every one failed) has zero advantage and
teaches nothing; dynamic sampling sets it aside, but its rollouts were paid for. With a settled-task weight
w < 1, a task whose kind's newest group was settled (returns all equal) is drawn w times as often as a task
whose kind's newest group differed or that no group has tried yet. Settled tasks are still drawn, so a task
the model starts to fail again (a skill traded for a similar one) is seen again and gets its full weight back.

A kind is a task without its world (`craft.make_wood_pickaxe.at_table.w7` -> `...at_table`): the suite has
about 9 worlds of each, so one group speaks for them all, and a run of a few hundred groups has tried every
kind, where it would have tried only a few of the tasks twice (docs/grpo.md measures how well a kind's newest
group foretells its next).

The state is the run's group log (grpo_log.GROUPS_CSV, one row per group rolled out, in order), so a resumed
run draws the tasks an uninterrupted one would have.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from crossagent.tasks.task import Task, task_kind
from crossagent.train.rollouts import EpisodeRollout


def check_settled_weight(weight: float) -> None:
    if not 0 < weight <= 1:
        raise ValueError(f"settled_task_weight must be in (0, 1] (1: every task drawn alike), got {weight}")


def informative_groups(episodes: list[EpisodeRollout]) -> list[int]:
    """The groups whose returns are not all equal (the ones with a non-zero advantage), in order."""
    returns: dict[int, set[float]] = {}
    for episode in episodes:
        returns.setdefault(episode.spec.group, set()).add(episode.episode_return)
    return [group for group, values in returns.items() if len(values) > 1]


def settled_tasks(groups: Iterable[Mapping]) -> dict[str, bool]:
    """Per task kind, whether its newest group's returns were all equal; `groups`: group-log rows in rollout order
    (their `task` and `informative` fields)."""
    return {task_kind(group["task"]): not int(group["informative"]) for group in groups}


def failing_kinds(groups: Iterable[Mapping]) -> dict[str, bool]:
    """Per task kind, whether its newest group that started without an expert prefix solved no episode; `groups`:
    group-log rows in rollout order (their `task`, `successes` and `expert_prefix_steps` fields). A kind that no
    such group has tried is left out: it is not known to fail."""
    return {task_kind(group["task"]): not int(group["successes"]) for group in groups
            if not int(group.get("expert_prefix_steps") or 0)}  # a log from before prefixes: none


def draw_tasks(tasks: tuple[Task, ...], count: int, seed: int, iteration: int, settled: Mapping[str, bool],
               settled_weight: float) -> list[Task]:
    """The iteration's tasks: a draw seeded by (seed, iteration), without repeats while there are enough tasks."""
    rng = np.random.default_rng([seed, iteration])
    weights = None  # uniform: the same draws as runs made before the curriculum existed
    if settled_weight < 1:
        weights = np.array([settled_weight if settled.get(task_kind(task.id), False) else 1.0 for task in tasks])
        weights /= weights.sum()
    return [tasks[i] for i in rng.choice(len(tasks), size=count, replace=count > len(tasks), p=weights)]
