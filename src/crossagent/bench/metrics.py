"""Benchmark metrics from stored episodes.

Definitions, per category and `overall` (all tasks of the summary together):

- tasks: distinct tasks with at least one stored episode; episodes: stored episodes;
  errors: episodes that raised. An episode that raised counts as a failure.
- ASR (average success rate) over all tasks: for each trial index t, the per-trial ASR is
  the fraction of the tasks whose trial t succeeded; `asr` is the mean of the per-trial ASRs
  and `asr_std` their population standard deviation (ddof=0) across trials, i.e. the spread
  that comes from the dynamics seed. With equal trials per task, `asr` equals the mean of
  the per-task success rates.
- ASR mini: the same mean restricted to the suite's mini-set tasks; None when none is stored.
- avg steps (success): mean steps of the successful episodes, the steps to completion;
  None when nothing succeeded.
- avg steps (all): mean steps of the episodes that did not raise (a failure ran until its
  budget or death); None when every episode raised.
- `overall` weighs every task equally, not every category.
- steps per call: for agents that answer through replies (level agents), primitive steps
  divided by policy calls over the episodes; calls per episode: policy calls divided by the
  episodes (that did not raise); invalid %: the share of steps spent waiting
  after a reply that could not execute. None for agents without replies.
- executed share / contained share: per level, the share of steps that executed that level /
  whose reply contained that level (CrossAgent's action distribution).

Rates are fractions in [0, 1]; reports show them in percent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from crossagent.actions.levels import DECODED_LEVELS, LEVELS
from crossagent.agents.level_agent import INVALID
from crossagent.bench.results_store import EpisodeRow, ResultsStore
from crossagent.tasks.task import CATEGORIES

OVERALL = "overall"
# The levels each share is drawn and logged for (bench.level_shares, GRPO's log): those an all-in-one agent
# picks among; an opt-in decoded level's (latent) shares are in the summaries all the same.
_PICKED = tuple(level for level in LEVELS if level not in DECODED_LEVELS)
LEVEL_KINDS = {"executed": (*_PICKED, INVALID), "contained": _PICKED}


@dataclass(frozen=True)
class CategoryMetrics:
    category: str
    tasks: int
    episodes: int
    errors: int
    trials: int  # distinct trial indices
    asr: float
    asr_std: float
    mini_tasks: int
    asr_mini: float | None
    avg_steps_success: float | None
    avg_steps_all: float | None
    steps_per_call: float | None = None
    calls_per_episode: float | None = None
    invalid_rate: float | None = None
    executed_share: dict[str, float] | None = None
    contained_share: dict[str, float] | None = None


@dataclass(frozen=True)
class TaskMetrics:
    task_id: str
    category: str
    episodes: int
    successes: int
    errors: int
    success_rate: float
    avg_steps_success: float | None


@dataclass(frozen=True)
class Summary:
    """The metrics of one agent on one suite."""

    agent: str
    suite: str
    categories: tuple[CategoryMetrics, ...]  # the suite's categories in their usual order
    overall: CategoryMetrics
    tasks: tuple[TaskMetrics, ...]

    def to_dict(self) -> dict:
        return asdict(self)

    def category(self, name: str) -> CategoryMetrics | None:
        """The metrics of category `name` (or `overall`); None where the summary has no task of it."""
        return next((m for m in (*self.categories, self.overall) if m.category == name), None)


def summarize(rows: Sequence[EpisodeRow], agent: str, suite: str, mini_ids: Collection[str] = ()) -> Summary:
    """Metrics of `rows`, all episodes of `agent` on `suite` (at most one per task and trial)."""
    if not rows:
        raise ValueError(f"no stored episodes of agent {agent!r} on suite {suite!r}")
    mini = set(mini_ids)
    by_category: dict[str, list[EpisodeRow]] = defaultdict(list)
    for row in rows:
        by_category[row.category].append(row)
    order = [c for c in CATEGORIES if c in by_category] + sorted(set(by_category) - set(CATEGORIES))
    return Summary(
        agent=agent,
        suite=suite,
        categories=tuple(category_metrics(c, by_category[c], mini) for c in order),
        overall=category_metrics(OVERALL, rows, mini),
        tasks=tuple(task_metrics(rows)),
    )


def category_metrics(category: str, rows: Sequence[EpisodeRow], mini_ids: Collection[str]) -> CategoryMetrics:
    per_trial = per_trial_asr(rows)
    mini_rows = [row for row in rows if row.task_id in mini_ids]
    ok_steps = [row.steps for row in rows if row.error is None]
    return CategoryMetrics(
        category=category,
        tasks=len({row.task_id for row in rows}),
        episodes=len(rows),
        errors=sum(row.error is not None for row in rows),
        trials=len(per_trial),
        asr=float(np.mean(per_trial)),
        asr_std=float(np.std(per_trial)),
        mini_tasks=len({row.task_id for row in mini_rows}),
        asr_mini=float(np.mean(per_trial_asr(mini_rows))) if mini_rows else None,
        avg_steps_success=_mean([row.steps for row in rows if row.success]),
        avg_steps_all=_mean(ok_steps),
        **reply_metrics(rows),
    )


def reply_metrics(rows: Sequence[EpisodeRow]) -> dict:
    """Steps per call, invalid rate and level shares, from the level counts stored with episodes."""
    stats = [row.extra for row in rows if row.extra and "calls" in row.extra]
    steps = sum(s["steps"] for s in stats)
    if not stats or not steps:
        return {}
    calls = sum(s["calls"] for s in stats)
    return {
        "steps_per_call": steps / calls if calls else None,
        "calls_per_episode": calls / len(stats),
        "invalid_rate": sum(s["invalid_steps"] for s in stats) / steps,
        "executed_share": level_shares(stats, "executed"),
        "contained_share": level_shares(stats, "contained"),
    }


def level_shares(stats: Sequence[dict], kind: str) -> dict[str, float]:
    """Per level, the share of the episodes' steps that executed it (`kind` "executed", INVALID
    included) or whose reply contained it ("contained"), from the counts LevelAgent stores with
    every episode (its `episode_stats`). Levels never seen are left out."""
    steps = sum(s["steps"] for s in stats)
    totals: dict[str, int] = defaultdict(int)
    for s in stats:
        for level, count in s.get(kind, {}).items():
            totals[level] += count
    return {level: count / steps for level, count in sorted(totals.items())} if steps else {}


def per_trial_asr(rows: Iterable[EpisodeRow]) -> list[float]:
    """The fraction of successful tasks for each trial index, in trial order."""
    by_trial: dict[int, list[bool]] = defaultdict(list)
    for row in rows:
        by_trial[row.trial].append(row.success)
    return [float(np.mean(by_trial[trial])) for trial in sorted(by_trial)]


def task_metrics(rows: Iterable[EpisodeRow]) -> list[TaskMetrics]:
    """Success rate over trials of each task, in task id order."""
    by_task: dict[str, list[EpisodeRow]] = defaultdict(list)
    for row in rows:
        by_task[row.task_id].append(row)
    return [
        TaskMetrics(
            task_id=task_id,
            category=group[0].category,
            episodes=len(group),
            successes=sum(row.success for row in group),
            errors=sum(row.error is not None for row in group),
            success_rate=sum(row.success for row in group) / len(group),
            avg_steps_success=_mean([row.steps for row in group if row.success]),
        )
        for task_id, group in sorted(by_task.items())
    ]


def summaries_from_store(store: ResultsStore, suites: Collection[str],
                         keys: Collection[tuple[str, int]] | None = None) -> list[Summary]:
    """One summary per (agent, suite) stored for `suites`; `keys` keeps only those (task_id, trial)."""
    summaries = []
    for agent, suite in store.agents_and_suites():
        if suite not in suites:
            continue
        rows = [row for row in store.episodes(agent, suite) if keys is None or (row.task_id, row.trial) in keys]
        if rows:
            summaries.append(summarize(rows, agent, suite, store.mini_ids(suite)))
    return summaries


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None
