"""Sub-command `executors` of the `crossagent` command: train the learned executors.

    crossagent data record --split train --trials 2 --out runs/expert        a recording of the expert
    crossagent executors train --data runs/expert --out runs/executors       one checkpoint per level
    crossagent level-table --suite mini --executors scripted,learned --executors-dir runs/executors
    crossagent executors train-latent --data runs/expert --out runs/executors/latent   the latent level
    crossagent level-table --suite mini --levels latent --executors-dir runs/executors

Every field of ExecutorTrainConfig is a flag (`--epochs 8`, `--batch-size 256`, ...; crossagent.cli_options), and
of LatentConfig and LatentTrainConfig for `train-latent` (`--codes 64`, `--chunk 4`, ...).
"""

from __future__ import annotations

import argparse

from crossagent.arguments import output_dir
from crossagent.cli_options import add_options, config_from_args
from crossagent.executors.latent_model import LatentConfig
from crossagent.executors.registry import LEARNED_LEVELS
from crossagent.models.threads import add_threads_option, use_threads
from crossagent.progress import quiet_library_bars
from crossagent.train.executors import ExecutorTrainConfig, train_executors
from crossagent.train.latent import LatentTrainConfig, train_latent


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("executors", help="learned executors for the upper action levels")
    actions = parser.add_subparsers(dest="executors_command", required=True)
    train = actions.add_parser("train", help="behaviour-clone one executor per level from a recording (resumable)")
    train.add_argument("--data", required=True, help="a folder written by `crossagent data record` (the expert)")
    train.add_argument("--out", type=output_dir, required=True, help="checkpoints folder: one sub-folder per level")
    train.add_argument("--levels", default=",".join(LEARNED_LEVELS),
                       help=f"comma-separated (default: {','.join(LEARNED_LEVELS)})")
    add_options(train, ExecutorTrainConfig)
    add_threads_option(train)
    train.set_defaults(run=run_train)
    latent = actions.add_parser("train-latent", help="learn the latent level: a codebook of action chunks and its "
                                                     "decoder, end to end from a recording (resumable)")
    latent.add_argument("--data", required=True, help="a folder written by `crossagent data record` (the expert)")
    latent.add_argument("--out", type=output_dir, required=True,
                        help="the checkpoint folder (the executors read EXECUTORS_DIR/latent)")
    add_options(latent, LatentConfig)
    add_options(latent, LatentTrainConfig)
    add_threads_option(latent)
    latent.set_defaults(run=run_train_latent)


def run_train(args: argparse.Namespace) -> int:
    use_threads(args.threads)
    quiet_library_bars()
    levels = [level.strip() for level in args.levels.split(",") if level.strip()]
    results = train_executors(args.data, args.out, levels, config_from_args(args, ExecutorTrainConfig))
    for result in results:
        if result.skipped:
            print(f"{result.level}: already trained with these settings in {args.out / result.level}")
        else:
            print(f"{result.level}: {result.examples} examples, {result.seconds:.0f} s, "
                  f"validation {result.validation} -> {args.out / result.level}")
    return 0


def run_train_latent(args: argparse.Namespace) -> int:
    use_threads(args.threads)
    quiet_library_bars()
    result = train_latent(args.data, args.out, config_from_args(args, LatentConfig),
                          config_from_args(args, LatentTrainConfig))
    if result.skipped:
        print(f"already trained with these settings in {args.out}")
    else:
        print(f"{result.chunks} training chunks, {result.seconds:.0f} s -> {args.out}")
    scores = result.validation
    if scores:
        print(f"held-out chunks: {scores['chunks']} ({scores['distinct_chunks']} distinct); codes used "
              f"{scores['codes_used']} of {scores['codes']}, perplexity {scores['perplexity']}; reconstruction "
              f"(teacher-forced) per action {scores['action_accuracy']:.1%}, done {scores['done_accuracy']:.1%}, "
              f"whole chunk {scores['chunk_accuracy']:.1%}")
    return 0
