"""Render summaries: a printed table, Markdown, JSON and a bar chart.

The table follows the OpenHA paper's: one row per category and one `overall` row, with
the number of tasks, average steps, ASR on the mini set and ASR on all tasks ± its
standard deviation across trials (definitions in `crossagent.bench.metrics`). Several
agents (or suites) make one row group each and grouped bars.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from crossagent.bench.metrics import CategoryMetrics, Summary  # noqa: E402

HEADER = ("Agent", "Category", "Tasks", "Episodes", "Errors", "Steps (success)", "Steps (all)", "ASR mini %",
          "ASR all % ± std", "Steps/call", "Invalid %")
REPORT_FILES = {"markdown": "summary.md", "json": "summary.json", "chart": "summary.png"}


def label(summary: Summary, summaries: Sequence[Summary]) -> str:
    """The agent's name, with the suite when the summaries span several suites."""
    several_suites = len({s.suite for s in summaries}) > 1
    return f"{summary.agent} ({summary.suite})" if several_suites else summary.agent


def table_rows(summaries: Sequence[Summary]) -> list[list[list[str]]]:
    """One group of rows per summary: its categories, then overall."""
    return [[_row(label(summary, summaries), metrics) for metrics in (*summary.categories, summary.overall)]
            for summary in summaries]


def format_table(summaries: Sequence[Summary]) -> str:
    """A plain-text table for the terminal, groups separated by rules."""
    groups = table_rows(summaries)
    widths = [max(len(cell) for cell in column) for column in zip(HEADER, *(row for group in groups for row in group))]

    def line(cells) -> str:
        return "  ".join(cell.rjust(width) if i >= 2 else cell.ljust(width)
                         for i, (cell, width) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(line(HEADER))
    lines = [line(HEADER)]
    for group in groups:
        lines.append(rule)
        lines.extend(line(row) for row in group)
    return "\n".join(lines)


def markdown(summaries: Sequence[Summary]) -> str:
    """The summary table, then every task's success rate."""
    lines = ["# Benchmark summary", "", markdown_table(HEADER, [row for group in table_rows(summaries) for row in group]),
             "", "ASR = average success rate (mean over trials of the per-trial rate over tasks); ± is its "
             "population standard deviation across trials. Steps (success) = mean steps of the successful "
             "episodes; Steps (all) = mean steps of the episodes that did not raise. Episodes that raised count "
             "as failures.", "", "## Per task", ""]
    task_header = ("Agent", "Task", "Category", "Episodes", "Success %", "Errors", "Steps (success)")
    task_rows = [[label(summary, summaries), task.task_id, task.category, str(task.episodes),
                  percent(task.success_rate), str(task.errors), number(task.avg_steps_success)]
                 for summary in summaries for task in summary.tasks]
    lines.append(markdown_table(task_header, task_rows, text_columns=3))
    return "\n".join(lines) + "\n"


def summary_json(summaries: Sequence[Summary]) -> dict:
    return {"summaries": [summary.to_dict() for summary in summaries]}


def plot_summary(summaries: Sequence[Summary], path: Path) -> None:
    """ASR per category (and overall) in percent, one bar per agent, error bars = std across trials."""
    categories = list(dict.fromkeys(m.category for s in summaries for m in (*s.categories, s.overall)))
    x = np.arange(len(categories))
    width = 0.8 / len(summaries)
    figure, axes = plt.subplots(figsize=(max(5.0, 1.6 * len(categories) * max(1, len(summaries)) ** 0.5), 4))
    for index, summary in enumerate(summaries):
        found = [summary.category(c) for c in categories]
        values = [100 * m.asr if m else 0.0 for m in found]
        errors = [100 * m.asr_std if m else 0.0 for m in found]
        offset = (index - (len(summaries) - 1) / 2) * width
        bars = axes.bar(x + offset, values, width, yerr=errors, capsize=3, label=label(summary, summaries))
        axes.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    axes.set_xticks(x, categories)
    axes.set_ylabel("ASR (%)")
    axes.set_ylim(0, 105)
    axes.set_title("Average success rate by category (± std across trials)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(summaries: Sequence[Summary], out_dir: str | Path) -> dict[str, Path]:
    """Write summary.md, summary.json and summary.png into `out_dir`; returns their paths."""
    if not summaries:
        raise ValueError("nothing to report: no stored episodes match")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / name for kind, name in REPORT_FILES.items()}
    paths["markdown"].write_text(markdown(summaries))
    paths["json"].write_text(json.dumps(summary_json(summaries), indent=1) + "\n")
    plot_summary(summaries, paths["chart"])
    return paths


def _row(agent: str, metrics: CategoryMetrics) -> list[str]:
    return [agent, metrics.category, str(metrics.tasks), str(metrics.episodes), str(metrics.errors),
            number(metrics.avg_steps_success), number(metrics.avg_steps_all), percent(metrics.asr_mini),
            asr_cell(metrics), number(metrics.steps_per_call),
            percent(metrics.invalid_rate)]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 2) -> str:
    """Text columns first (left-aligned), numbers after (right-aligned)."""
    align = ["---" if i < text_columns else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def asr_cell(metrics: CategoryMetrics | None) -> str:
    """`ASR ± std` in percent; "-" where there is no metric."""
    return "-" if metrics is None else f"{percent(metrics.asr)} ± {percent(metrics.asr_std)}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
