"""The `crossagent` command: each sub-package registers its own sub-commands."""

from __future__ import annotations

import argparse
import sys

from crossagent.actions.minecraft import cli as minecraft_cli
from crossagent import comparison, demo
from crossagent.bench import cli as bench_cli
from crossagent.bench import level_table, model_eval
from crossagent.data import cli as data_cli
from crossagent.folder_lock import FolderBusy
from crossagent.models import serve
from crossagent.tasks import cli as tasks_cli
from crossagent.train import executors_cli, grpo_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossagent", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (demo, tasks_cli, bench_cli, level_table, data_cli, model_eval, grpo_cli, executors_cli, comparison,
                   serve, minecraft_cli):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, FolderBusy) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"crossagent {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
