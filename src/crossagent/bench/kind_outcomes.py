"""Held-out successes per task kind, and what one model gained and lost against another on them.

An overall ASR hides trades between kinds: GRPO learned a wooden sword while it lost a wooden pickaxe
(docs/grpo.md). Per kind (a task without its world: tasks.task.task_kind), the episodes gained and lost show such
trades, and the kinds that no start solved show whether training reached past what its start could do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from crossagent.bench.results_store import EpisodeRow
from crossagent.tasks.task import task_kind


def successes_per_kind(rows: Iterable[EpisodeRow]) -> Counter[str]:
    """Successful episodes per kind; every kind of `rows` is a key, 0 where no episode succeeded."""
    counts: Counter[str] = Counter()
    for row in rows:
        counts[task_kind(row.task_id)] += int(row.success)
    return counts


def gained_and_lost(before: Mapping[str, int], after: Mapping[str, int]) -> tuple[int, int]:
    """Episodes gained, summed over the kinds where `after` solved more than `before`, and lost, over those where
    it solved fewer."""
    kinds = set(before) | set(after)
    changes = [after.get(kind, 0) - before.get(kind, 0) for kind in kinds]
    return sum(change for change in changes if change > 0), -sum(change for change in changes if change < 0)


def never_solved(starts: Sequence[Mapping[str, int]]) -> set[str]:
    """The kinds that none of `starts` solved in any episode."""
    return {kind for kind in set().union(*starts) if not any(start.get(kind, 0) for start in starts)}
