"""Sub-commands `bench`, `report`, `replay` and `crafter-score` of the `crossagent` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from crossagent.arguments import output_dir, output_file, positive_int
from crossagent.bench.crafter_score import CRAFTER_SUITE, format_score, run_crafter_score, write_score
from crossagent.bench.metrics import summaries_from_store
from crossagent.bench.replay import replay
from crossagent.bench.report import format_table, summary_json, write_report
from crossagent.bench.results_store import RESULTS_FILE, ResultsStore
from crossagent.bench.runner import run_benchmark
from crossagent.executors.registry import DEFAULT_CHECKPOINTS, KINDS, Executors
from crossagent.tasks.suite import load_suite

INTERRUPTED = 130  # the shell's code for Ctrl-C
EPISODES_RAISED = 1  # the run finished, but some episodes raised: their results are failures, not measurements


def register(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="run an agent on the task suite and report its success rates")
    bench.add_argument("--agent", required=True, help="agent name (see crossagent.agents.registry)")
    bench.add_argument("--suite", default="mini",
                       help="'mini', 'full', a category name, or comma-separated task ids (default: mini)")
    bench.add_argument("--suite-file", help="suite JSON file to use instead of the packaged one")
    bench.add_argument("--trials", type=positive_int, default=3, help="trials (dynamics seeds) per task (default: 3)")
    bench.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                       help="worker processes (default: all CPUs)")
    bench.add_argument("--out", required=True, type=output_dir, help=f"results directory (holds {RESULTS_FILE})")
    bench.add_argument("--retry-errors", action="store_true", help="run again the stored episodes that raised")
    bench.add_argument("--executors", choices=KINDS, default="scripted",
                       help="what runs an oracle's upper-level replies (learned: stored as AGENT+learned)")
    bench.add_argument("--executors-dir", type=Path, default=DEFAULT_CHECKPOINTS,
                       help=f"learned executors' checkpoints, one folder per level (default: {DEFAULT_CHECKPOINTS})")
    bench.add_argument("--json", action="store_true", help="print the JSON summary instead of the table")
    bench.set_defaults(run=run_bench)

    report = commands.add_parser("report", help="re-render the summary files from a results directory")
    report.add_argument("--out", required=True, type=output_dir, help=f"results directory (holds {RESULTS_FILE})")
    report.add_argument("--suite", help="only this stored suite name (default: every task suite stored)")
    report.add_argument("--json", action="store_true", help="print the JSON summary instead of the table")
    report.set_defaults(run=run_report)

    replay_parser = commands.add_parser("replay", help="replay a stored episode into a GIF")
    replay_parser.add_argument("--results", required=True, type=Path, help="results directory")
    replay_parser.add_argument("--agent", required=True)
    replay_parser.add_argument("--task", required=True, help="task id")
    replay_parser.add_argument("--trial", required=True, type=int)
    replay_parser.add_argument("--out", required=True, type=output_file, help="GIF file to write")
    replay_parser.add_argument("--suite", help="stored suite name, when the episode is stored for several")
    replay_parser.add_argument("--suite-file", help="suite JSON file the episode's task comes from")
    replay_parser.add_argument("--size", type=int, default=256, help="frame side in pixels (default: 256)")
    replay_parser.add_argument("--fps", type=int, default=10)
    replay_parser.set_defaults(run=run_replay)

    score = commands.add_parser("crafter-score", help="the standard Crafter score over default episodes")
    score.add_argument("--agent", required=True)
    score.add_argument("--episodes", type=positive_int, default=10,
                       help="episodes, on world seeds 0..N-1 (default: 10)")
    score.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1)
    score.add_argument("--out", required=True, type=output_dir, help=f"results directory (holds {RESULTS_FILE})")
    score.add_argument("--json", action="store_true", help="print the JSON result instead of the text")
    score.set_defaults(run=run_score)


def run_bench(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite_file)
    tasks = suite.select(args.suite)
    if not tasks:
        raise ValueError(f"--suite {args.suite!r} selects no task of suite {suite.name!r}")
    executors = Executors(args.executors, args.executors_dir)
    try:
        run = run_benchmark(args.agent, tasks, args.trials, args.workers, args.out / RESULTS_FILE, suite.name,
                            mini_ids=suite.mini_ids, retry_errors=args.retry_errors, executors=executors)
    except KeyboardInterrupt:
        print(f"interrupted: finished episodes are stored in {args.out / RESULTS_FILE}; "
              "rerun the same command to resume", file=sys.stderr)
        return INTERRUPTED
    planned = {(task.id, trial) for task in tasks for trial in range(args.trials)}
    with ResultsStore(args.out / RESULTS_FILE) as store:
        summaries = summaries_from_store(store, {suite.name}, planned)
        raised = sorted((row for row in store.episodes(executors.agent_name(args.agent), suite.name)
                         if row.error is not None and (row.task_id, row.trial) in planned),
                        key=lambda row: (row.task_id, row.trial))
    paths = write_report(summaries, args.out)
    if args.json:
        print(json.dumps(summary_json(summaries), indent=1))
    else:
        print(format_table(summaries))
        print(f"\n{run.ran} episodes run ({run.errors} raised), {run.skipped} already stored; "
              f"wrote {', '.join(str(p) for p in paths.values())}")
    if not raised:
        return 0
    first = raised[0]
    print(f"crossagent bench: error: {len(raised)} of {len(planned)} episodes raised and count as failures; "
          f"first: task {first.task_id!r} trial {first.trial}: {first.exception_line}\n"
          f"Fix the cause, then rerun with --retry-errors (tracebacks: the error column of {args.out / RESULTS_FILE})",
          file=sys.stderr)
    return EPISODES_RAISED


def run_report(args: argparse.Namespace) -> int:
    store_path = args.out / RESULTS_FILE
    if not store_path.exists():
        raise FileNotFoundError(f"no results file {store_path}")
    with ResultsStore(store_path) as store:
        stored = {suite for _, suite in store.agents_and_suites()}
        suites = {args.suite} if args.suite else stored - {CRAFTER_SUITE}
        summaries = summaries_from_store(store, suites)
    paths = write_report(summaries, args.out)
    if args.json:
        print(json.dumps(summary_json(summaries), indent=1))
        return 0
    print(format_table(summaries))
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    result = replay(args.results, args.agent, args.task, args.trial, args.out, suite=args.suite,
                    suite_file=args.suite_file, frame_size=args.size, fps=args.fps)
    print(f"replayed {args.task} trial {args.trial}: success={result.success} steps={result.steps} "
          f"died={result.died}; wrote {args.out} ({len(result.frames)} frames)")
    return 0


def run_score(args: argparse.Namespace) -> int:
    try:
        result = run_crafter_score(args.agent, args.episodes, args.workers, args.out)
    except KeyboardInterrupt:
        print(f"interrupted: finished episodes are stored in {args.out / RESULTS_FILE}; "
              "rerun the same command to resume", file=sys.stderr)
        return INTERRUPTED
    paths = write_score(result, args.out)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
        return 0
    print(format_score(result))
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    return 0
