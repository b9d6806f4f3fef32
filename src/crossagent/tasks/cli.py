"""`crossagent tasks list|show|validate|generate`."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

from crossagent.arguments import output_dir, output_file, positive_int
from crossagent.tasks.generate import candidate_tasks, finalize
from crossagent.tasks.suite import load_suite, packaged_suite_path
from crossagent.tasks.task import CATEGORIES, DIFFICULTIES
from crossagent.bench.task_validation import expert_runs, expert_steps, solved_steps


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("tasks", help="list, show, validate or generate the task suite")
    actions = parser.add_subparsers(dest="tasks_command", required=True)

    listing = actions.add_parser("list", help="one line per task, then counts per category")
    listing.add_argument("--suite", default="full", help="full, mini, a category, or comma-separated ids")
    listing.add_argument("--suite-file", help="a suite JSON file (default: the packaged suite)")
    listing.add_argument("--json", action="store_true", help="print the tasks as a JSON list instead of the table")
    listing.set_defaults(run=_list)

    show = actions.add_parser("show", help="one task as JSON")
    show.add_argument("task_id")
    show.add_argument("--suite-file", help="a suite JSON file (default: the packaged suite)")
    show.set_defaults(run=_show)

    validate = actions.add_parser("validate", help="run the expert on tasks; fail if it cannot solve one")
    validate.add_argument("--suite", default="full")
    validate.add_argument("--suite-file", help="a suite JSON file (default: the packaged suite)")
    validate.add_argument("--workers", type=positive_int, default=2)
    validate.add_argument("--out", type=output_dir, help="results file directory (default: a temporary one)")
    validate.set_defaults(run=_validate)

    generate = actions.add_parser("generate", help="expand the spec, keep what the expert solves, write the suite")
    generate.add_argument("--out", type=output_file, default=str(packaged_suite_path()), help="suite file to write")
    generate.add_argument("--workers", type=positive_int, default=2)
    generate.add_argument("--work-dir", default="runs/suite-generation", help="resumable validation results")
    generate.set_defaults(run=_generate)


def _list(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite_file)
    tasks = suite.select(args.suite)
    if args.json:
        print(json.dumps([task.to_dict() for task in tasks], indent=1))
        return 0
    mini = set(suite.mini_ids)
    for task in tasks:
        flag = "mini" if task.id in mini else ""
        print(f"{task.id:60s} {task.category:9s} {task.difficulty:7s} budget {task.budget:4d} {flag:4s} {task.instruction}")
    print()
    print(count_table(tasks, mini))
    return 0


def count_table(tasks, mini: set[str]) -> str:
    counts = Counter((t.category, t.difficulty) for t in tasks)
    lines = ["| category | " + " | ".join(DIFFICULTIES) + " | total | mini |", "|---" * (len(DIFFICULTIES) + 3) + "|"]
    for category in CATEGORIES:
        row = [counts[(category, d)] for d in DIFFICULTIES]
        in_mini = sum(1 for t in tasks if t.category == category and t.id in mini)
        lines.append(f"| {category} | " + " | ".join(map(str, row)) + f" | {sum(row)} | {in_mini} |")
    lines.append("| all | " + " | ".join(str(sum(counts[(c, d)] for c in CATEGORIES)) for d in DIFFICULTIES)
                 + f" | {len(tasks)} | {sum(1 for t in tasks if t.id in mini)} |")
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    print(json.dumps(load_suite(args.suite_file).task(args.task_id).to_dict(), indent=2))
    return 0


def _validate(args: argparse.Namespace) -> int:
    tasks = load_suite(args.suite_file).select(args.suite)
    with tempfile.TemporaryDirectory() as scratch:
        store = Path(args.out or scratch) / "validation.sqlite"
        store.parent.mkdir(parents=True, exist_ok=True)
        runs = expert_runs(tasks, store, args.workers)
    unsolved = [runs[task.id] for task in tasks if solved_steps(runs[task.id]) is None]
    print(f"validated {len(tasks)} tasks: expert solved {len(tasks) - len(unsolved)}")
    for row in unsolved:
        print(f"  ERROR {row.task_id}: {row.exception_line}" if row.error else f"  UNSOLVED {row.task_id}")
    return 1 if unsolved else 0


def _generate(args: argparse.Namespace) -> int:
    candidates = candidate_tasks()
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    steps = expert_steps(candidates, work_dir / "validation.sqlite", args.workers)
    suite = finalize(candidates, steps)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    suite.save(Path(args.out))
    dropped = len(candidates) - len(suite.tasks)
    print(f"{len(candidates)} candidates, {dropped} dropped (expert failed), {len(suite.tasks)} kept -> {args.out}")
    print(count_table(suite.tasks, set(suite.mini_ids)))
    return 0
