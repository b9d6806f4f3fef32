"""Sub-command `grpo` of the `crossagent` command: train, evaluate a checkpoint, or plot a run's curves.

    crossagent grpo --model SFT_DIR --out RUN_DIR [--updates 100 --group-size 4 ...]   train (resumes)
    crossagent grpo --eval --model RUN_DIR/final --out EVAL_DIR [--trials 3]           held-out evaluation
    crossagent grpo --plot --out RUN_DIR                                               learning curves PNG

Every field of GRPOConfig is a flag (`--kl-coef 0.01`, `--no-use-image`, ...).
Evaluation runs in-process with the training's lockstep rollout code (the agent registry has no
model-backed agent for `crossagent bench` to run), in dynamic mode at --eval-temperature, and
stores each episode in EVAL_DIR/results.sqlite, so `crossagent report --out EVAL_DIR` renders it
like a benchmark.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path

from crossagent.bench.metrics import summaries_from_store
from crossagent.bench.report import format_table, write_report
from crossagent.bench.results_store import RESULTS_FILE, ResultsStore
from crossagent.train.grpo import CURVES_PNG, LOG_CSV, GRPOConfig, plot_learning_curves, train

HELDOUT = "heldout"
# Fields with a flag of another name, or set by the sub-command itself.
RENAMED = {"model": "--model", "output_dir": "--out"}


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("grpo", help="multi-turn GRPO: train a model to pick its action level, or evaluate")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--eval", action="store_true", help="evaluate --model on held-out tasks into --out")
    mode.add_argument("--plot", action="store_true", help=f"render --out/{CURVES_PNG} from --out/{LOG_CSV}")
    parser.add_argument("--model", help="checkpoint directory: the SFT model to train, or the model to evaluate "
                                        "(a run's final/, or a checkpoint-N/ directory)")
    parser.add_argument("--out", type=Path, required=True,
                        help="run directory (training), or results directory (--eval)")
    hints = typing.get_type_hints(GRPOConfig)
    for config_field in dataclasses.fields(GRPOConfig):
        if config_field.name in RENAMED:
            continue
        flag = "--" + config_field.name.replace("_", "-")
        kind = hints[config_field.name]
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=config_field.default)
        else:
            base = next(t for t in typing.get_args(kind) or (kind,) if t is not type(None))
            parser.add_argument(flag, type=base, default=config_field.default,
                                help=f"(default: {config_field.default})")
    evaluation = parser.add_argument_group("evaluation (--eval)")
    evaluation.add_argument("--trials", type=int, default=3, help="trials (dynamics seeds) per task (default: 3)")
    evaluation.add_argument("--suite", default=HELDOUT,
                            help="'heldout' (default), 'mini', 'full', a category, or comma-separated task ids")
    evaluation.add_argument("--eval-max-steps", type=int, default=None,
                            help="cap on steps per episode (default: each task's budget, as the benchmark)")
    evaluation.add_argument("--eval-batch", type=int, default=32, help="episodes stepped together (default: 32)")
    evaluation.add_argument("--agent-name",
                            help="name to store results under (default: grpo:<checkpoint name>@dynamic)")
    parser.set_defaults(run=run_grpo)


def config_from_args(args: argparse.Namespace) -> GRPOConfig:
    if not args.model:
        raise ValueError("--model is required (the checkpoint directory to train from)")
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(GRPOConfig) if f.name not in RENAMED}
    return GRPOConfig(model=args.model, output_dir=str(args.out), **values)


def run_grpo(args: argparse.Namespace) -> int:
    if args.plot:
        csv_path = args.out / LOG_CSV
        if not csv_path.exists():
            raise FileNotFoundError(f"no training log {csv_path}")
        print(f"wrote {plot_learning_curves(csv_path, args.out / CURVES_PNG)}")
        return 0
    if args.eval:
        return run_evaluation(args)
    result = train(config_from_args(args))
    print(f"{result.iterations} iterations done; final model {result.final_model}; "
          f"log {Path(result.output_dir) / LOG_CSV}")
    return 0


def model_directory(path: str) -> Path:
    """A transformers checkpoint directory: the path itself, or its model/ (a GRPO checkpoint-N)."""
    path = Path(path)
    return path / "model" if (path / "model" / "config.json").is_file() else path


def run_evaluation(args: argparse.Namespace) -> int:
    # Imported here: loading torch models is not needed for training's argument parsing or --plot.
    from crossagent.models.loading import load_model
    from crossagent.tasks.splits import heldout_tasks
    from crossagent.tasks.suite import load_suite
    from crossagent.train.rollouts import LocalSampler, evaluate

    config = config_from_args(args)
    model_dir = model_directory(config.model)
    suite = load_suite(config.suite_file)
    tasks = heldout_tasks(suite) if args.suite == HELDOUT else suite.select(args.suite)
    if not tasks:
        raise ValueError(f"--suite {args.suite!r} selects no task of suite {suite.name!r}")
    name = model_dir.parent.name if model_dir.name == "model" else model_dir.name
    agent_name = args.agent_name or f"grpo:{name}@dynamic"
    model, processor = load_model(model_dir)
    sampler = LocalSampler(model, processor, config.generation_settings(config.eval_temperature))
    settings = dataclasses.replace(config.rollout_settings(), max_episode_steps=args.eval_max_steps)
    with ResultsStore(args.out / RESULTS_FILE) as store:
        store.set_mini_ids(suite.name, suite.mini_ids)
        run = evaluate(sampler, tasks, args.trials, settings, store, agent_name, suite.name, args.eval_batch,
                       seed=config.seed)
        planned = {(task.id, trial) for task in tasks for trial in range(args.trials)}
        summaries = summaries_from_store(store, {suite.name}, planned)
    paths = write_report(summaries, args.out)
    print(format_table(summaries))
    steps = sum(batch.env_steps for batch in run.batches)
    seconds = sum(batch.seconds for batch in run.batches)
    print(f"\n{run.ran} episodes run, {run.planned - run.ran} already stored"
          + (f" ({steps / seconds:.1f} env steps/s)" if seconds else "")
          + f"; wrote {', '.join(str(p) for p in paths.values())}")
    return 0
