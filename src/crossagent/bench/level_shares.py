"""CrossAgent's action distribution as a figure: per category, the share of steps whose reply
contained each level and the share that executed each level, at evaluation (one bar per agent)
and, when a GRPO run's per-category log is given, over its training iterations."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from crossagent.bench.metrics import LEVEL_KINDS, Summary  # noqa: E402
from crossagent.tasks.task import CATEGORIES  # noqa: E402


def plot_level_shares(summaries: Sequence[Summary], path: str | Path, grpo_log: str | Path | None = None) -> Path:
    """One column per category; rows: executed and contained shares at evaluation (when some summary has
    them), then over GRPO training (when the log exists)."""
    training = read_level_log(grpo_log) if grpo_log is not None and Path(grpo_log).exists() else None
    agents = [s for s in summaries if any(m.executed_share for m in s.categories)]
    panels = []
    if agents:
        panels.append((_bars, agents))
    if training:
        panels.append((_curves, training))
    if not panels:
        raise ValueError("no level shares to draw: no agent with replies and no GRPO level log")
    rows = len(LEVEL_KINDS) * len(panels)
    figure, axes = plt.subplots(rows, len(CATEGORIES), figsize=(5.5 * len(CATEGORIES), 3.2 * rows), squeeze=False)
    for column, category in enumerate(CATEGORIES):
        for block, (draw, data) in enumerate(panels):
            for row, (kind, levels) in enumerate(LEVEL_KINDS.items()):
                draw(axes[block * len(LEVEL_KINDS) + row, column], data, category, kind, levels)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def _bars(axis, agents: Sequence[Summary], category: str, kind: str, levels: Sequence[str]) -> None:
    width = 0.8 / len(levels)
    x = np.arange(len(agents))
    for index, level in enumerate(levels):
        values = []
        for summary in agents:
            metrics = summary.category(category)
            values.append(((getattr(metrics, f"{kind}_share") if metrics else None) or {}).get(level, 0.0))
        axis.bar(x + (index - (len(levels) - 1) / 2) * width, values, width, label=level)
    axis.set_xticks(x, [summary.agent for summary in agents], rotation=30, ha="right", fontsize=7)
    axis.set_title(f"{category}: share of steps that {kind} each level (evaluation)", fontsize=9)
    _share_axis(axis)


def _share_axis(axis) -> None:
    """Shares run 0-1; the legend sits in one row above 1, where it hides no bar or point."""
    axis.set_ylim(0, 1.3)
    axis.set_yticks(np.linspace(0, 1, 6))
    if axis.get_legend_handles_labels()[0]:  # a category no GRPO batch drew has no curve
        axis.legend(fontsize=7, ncol=5, loc="upper center", frameon=False)


def _curves(axis, training: dict, category: str, kind: str, levels: Sequence[str]) -> None:
    for level in levels:
        points = sorted(training.get((category, kind, level), {}).items())
        if points:
            axis.plot(*zip(*points), marker="o", label=level)
    axis.set_xlabel("GRPO iteration")
    axis.set_title(f"{category}: share of steps that {kind} each level (GRPO rollouts)", fontsize=9)
    _share_axis(axis)


def read_level_log(path: str | Path) -> dict[tuple[str, str, str], dict[int, float]]:
    """(category, kind, level) -> {iteration: share} from a GRPO run's level_shares.csv."""
    series: dict[tuple[str, str, str], dict[int, float]] = {}
    with Path(path).open() as file:
        for row in csv.DictReader(file):
            series.setdefault((row["category"], row["kind"], row["level"]), {})[int(row["iteration"])] = float(
                row["share"])
    return series
