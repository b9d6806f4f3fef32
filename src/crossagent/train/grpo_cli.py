"""Sub-command `grpo` of the `crossagent` command: train, or plot a run's curves.

    crossagent grpo --model SFT_DIR --out RUN_DIR [--updates 100 --group-size 4 ...]   train (resumes)
    crossagent grpo --plot --out RUN_DIR                                               learning curves PNG

Every field of GRPOConfig is a flag (`--kl-coef 0.01`, `--no-use-image`, ...; crossagent.cli_options), its
help the comment on the field in train/grpo.py.
Evaluate a trained model with `crossagent eval-model` (bench/model_eval.py), the same episode loop
as the rollouts, on the held-out tasks in dynamic mode at CrossAgent's temperature 0.4:

    crossagent eval-model --model RUN_DIR/final --out EVAL_DIR --suite heldout --modes dynamic \
        --temperature 0.4 [--history 3 --observe image --format mixed]

(a checkpoint's weights are in RUN_DIR/checkpoint-N/model; pass the run's history_length,
use_image/use_text and output_format as --history, --observe and --format).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crossagent.arguments import output_dir
from crossagent.bench.level_shares import plot_level_shares
from crossagent.cli_options import add_options, config_from_args
from crossagent.models.threads import add_threads_option, use_threads
from crossagent.progress import quiet_library_bars
from crossagent.train.grpo import GRPOConfig, train
from crossagent.train.grpo_log import CURVES_PNG, LEVEL_CSV, LEVEL_SHARES_PNG, LOG_CSV, plot_learning_curves


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("grpo", help="multi-turn GRPO: train a model to pick its action level "
                                              "(evaluate it with eval-model)")
    parser.add_argument("--plot", action="store_true", help=f"render --out/{CURVES_PNG} from --out/{LOG_CSV}")
    # Not required as options: --plot needs only --out.
    parser.add_argument("--model", help="checkpoint directory of the SFT model to train (also the KL reference)")
    parser.add_argument("--out", type=output_dir, required=True, help="run directory")
    add_options(parser, GRPOConfig, skip=("model", "output_dir"))
    add_threads_option(parser)
    parser.set_defaults(run=run_grpo)


def grpo_config(args: argparse.Namespace) -> GRPOConfig:
    if not args.model:
        raise ValueError("--model is required (the checkpoint directory to train from)")
    return config_from_args(args, GRPOConfig, model=args.model, output_dir=str(args.out))


def run_grpo(args: argparse.Namespace) -> int:
    if args.plot:
        csv_path = args.out / LOG_CSV
        if not csv_path.exists():
            raise FileNotFoundError(f"no training log {csv_path}")
        print(f"wrote {plot_learning_curves(csv_path, args.out / CURVES_PNG)}")
        if (args.out / LEVEL_CSV).exists():
            print(f"wrote {plot_level_shares([], args.out / LEVEL_SHARES_PNG, args.out / LEVEL_CSV)}")
        return 0
    use_threads(args.threads)
    quiet_library_bars()  # a checkpoint every few iterations would add a bar each
    result = train(grpo_config(args))
    print(f"{result.iterations} iterations done; final model {result.final_model}; "
          f"log {Path(result.output_dir) / LOG_CSV}")
    return 0

