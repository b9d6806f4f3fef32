"""`crossagent level-table`: the HA ceiling table, one oracle agent per action level.

Each oracle expresses the expert's plan in one level only, so its success rate is that
level's executor ceiling per category; steps per call is the level's temporal abstraction.
`--executors scripted,learned` adds a row per upper level run by the learned executors
(`crossagent executors train`), side by side with the scripted ceiling. The latent level is opt-in
(`--levels` with latent): its codebook is learned (`crossagent executors train-latent`), read from
`--executors-dir`/latent; it has one row whatever the executors, under the first kind asked for.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crossagent.actions.levels import DECODED_LEVELS, LEVELS
from crossagent.arguments import output_dir, positive_int
from crossagent.bench.metrics import Summary, summaries_from_store
from crossagent.bench.report import asr_cell, write_report
from crossagent.bench.results_store import RESULTS_FILE, ResultsStore
from crossagent.bench.runner import run_benchmark
from crossagent.executors.registry import DEFAULT_CHECKPOINTS, KINDS, LEARNED_LEVELS, Executors
from crossagent.tasks.suite import load_suite
from crossagent.tasks.task import CATEGORIES

TABLE_FILE = "level_table.md"
DEFAULT_LEVELS = tuple(level for level in LEVELS if level not in DECODED_LEVELS)  # those that need no training


def register(commands: argparse._SubParsersAction) -> None:
    table = commands.add_parser("level-table", help="run oracle:LEVEL for every level and tabulate ASR per category")
    table.add_argument("--suite", default="full", help="'mini', 'full', a category, or task ids (default: full)")
    table.add_argument("--suite-file", help="a suite JSON file (default: the packaged suite)")
    table.add_argument("--trials", type=positive_int, default=3)
    table.add_argument("--workers", type=positive_int, default=2)
    table.add_argument("--out", type=output_dir, default=Path("runs/oracle"))
    table.add_argument("--executors", type=comma_choices(KINDS, "executors"), default=("scripted",),
                       help=f"comma-separated, a row per level for each: {', '.join(KINDS)} (default: scripted)")
    table.add_argument("--executors-dir", type=Path, default=DEFAULT_CHECKPOINTS,
                       help=f"learned executors' checkpoints, one folder per level (default: {DEFAULT_CHECKPOINTS})")
    table.add_argument("--levels", type=comma_choices(LEVELS, "levels"), default=DEFAULT_LEVELS,
                       help=f"comma-separated, of {', '.join(LEVELS)} (default: {','.join(DEFAULT_LEVELS)}; latent "
                            "needs its checkpoint in --executors-dir)")
    table.set_defaults(run=run_level_table)


def comma_choices(known: tuple[str, ...], what: str):
    """An argparse type: a comma-separated, non-empty list of `known` names (`what` names them in errors)."""
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(name.strip() for name in text.split(",") if name.strip())
        if not chosen or any(name not in known for name in chosen):
            raise argparse.ArgumentTypeError(f"not {what}: {text!r} (known: {', '.join(known)})")
        return chosen
    return parse


def run_level_table(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite_file)
    tasks = suite.select(args.suite)
    runs = [(f"oracle:{level}", Executors(kind, args.executors_dir)) for level in reversed(LEVELS)
            if level in args.levels for kind in kinds_of(level, args.executors)]
    agents = [executors.agent_name(agent) for agent, executors in runs]
    for agent, executors in runs:
        run_benchmark(agent, tasks, args.trials, args.workers, args.out / RESULTS_FILE, suite.name,
                      mini_ids=suite.mini_ids, executors=executors)
    planned = {(task.id, trial) for task in tasks for trial in range(args.trials)}
    with ResultsStore(args.out / RESULTS_FILE) as store:
        summaries = [s for s in summaries_from_store(store, {suite.name}, planned) if s.agent in agents]
    write_report(summaries, args.out)
    table = level_table(sorted(summaries, key=lambda s: agents.index(s.agent)))
    (args.out / TABLE_FILE).write_text(table + "\n")
    print(table)
    print(f"\nwrote {args.out / TABLE_FILE} and {args.out}/summary.{{md,json,png}}")
    return 0


def kinds_of(level: str, kinds: tuple[str, ...]) -> tuple[str, ...]:
    """The executor kinds a level gets a row for: a learned level each, the others scripted only, the latent
    level one row (its decoder runs whatever the kind)."""
    if level in DECODED_LEVELS:
        return kinds[:1]
    return tuple(kind for kind in kinds if kind == "scripted" or level in LEARNED_LEVELS)


def level_table(summaries: list[Summary]) -> str:
    """Rows: levels. Columns: ASR % ± std per category and overall, then steps per call."""
    header = ["Level", *(f"{c} ASR %" for c in CATEGORIES), "overall ASR %", "steps/call", "invalid %"]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for summary in summaries:
        cells = [summary.agent.removeprefix("oracle:").replace("+", " + ")]
        cells.extend(asr_cell(metrics) for metrics in [*(summary.category(c) for c in CATEGORIES), summary.overall])
        overall = summary.overall
        cells.append("-" if overall.steps_per_call is None else f"{overall.steps_per_call:.2f}")
        cells.append("-" if overall.invalid_rate is None else f"{100 * overall.invalid_rate:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
