"""`crossagent demo`: the README's main job on the embedded default world.

For now: the scripted expert and the random agent on the mini suite (10 tasks per
category), with the results table printed and written as Markdown, JSON and PNG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crossagent.bench.metrics import summaries_from_store
from crossagent.bench.report import format_table, write_report
from crossagent.bench.results_store import RESULTS_FILE, ResultsStore
from crossagent.bench.runner import run_benchmark
from crossagent.tasks.suite import load_suite

DEMO_AGENTS = ("expert", "random")


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="benchmark the expert and the random agent on the mini suite")
    demo.add_argument("--trials", type=int, default=10, help="runs per task (default: 10)")
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="results directory")
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    suite = load_suite()
    tasks = suite.mini
    store_path = args.out / RESULTS_FILE
    for agent in DEMO_AGENTS:
        run_benchmark(agent, tasks, args.trials, args.workers, store_path, suite.name, mini_ids=suite.mini_ids)
    planned = {(task.id, trial) for task in tasks for trial in range(args.trials)}
    with ResultsStore(store_path) as store:
        summaries = summaries_from_store(store, {suite.name}, planned)
    paths = write_report(summaries, args.out)
    print(f"\n{suite.name}: mini suite, {len(tasks)} tasks x {args.trials} trials per agent\n")
    print(format_table(summaries))
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    return 0
