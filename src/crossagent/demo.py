"""`crossagent demo`: the README's main job, end to end on the embedded world, on a CPU.

1. record the expert on training tasks (never the mini set);
2. label the steps into every action level and build the all-in-one SFT mix;
3. build a tiny Qwen2-VL (random weights, tokenizer trained here) and cold-start SFT it;
4. benchmark it on the mini suite in slow, fast and dynamic modes, next to the random agent
   and the scripted expert; print the table and write the report (Markdown, JSON, PNG).
Every stage resumes: recordings, SFT checkpoints and episode results are stored as they come.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from crossagent.bench.metrics import summaries_from_store
from crossagent.bench.model_eval import EVAL_SAMPLING, ModelEvaluation, evaluate_model
from crossagent.bench.report import format_table, write_report
from crossagent.bench.results_store import RESULTS_FILE, ResultsStore
from crossagent.bench.runner import run_benchmark
from crossagent.data.builders import ALL_IN_ONE_WEIGHTS, BuildConfig
from crossagent.data.cli import MIX, label
from crossagent.data.recording import record
from crossagent.models.prompts import OBSERVES, OUTPUT_FORMATS
from crossagent.models.tiny_vlm import create_tiny_model
from crossagent.tasks.splits import train_tasks
from crossagent.tasks.suite import load_suite
from crossagent.train.sft import SFTSettings, run_sft

MODEL_NAME = "sft-all-in-one"
BASELINES = ("expert", "random")


@dataclass
class DemoSettings:
    out: Path = Path("runs/demo")
    per_category: int = 20  # training tasks per category
    record_trials: int = 2
    history: int = 1  # turns of history in prompts (short prompts keep CPU training fast)
    observe: str = "both"  # what the model reads: image, text (the text view) or both
    sft_steps: int = 300
    batch_size: int = 8
    learning_rate: float = 2e-3
    eval_trials: int = 1  # 2+ for a spread across trials (each adds ~5 min on 2 cores)
    slots: int = 30  # episodes evaluated side by side: one generate call for all of them
    requery_every: int = 4
    workers: int = 2


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="record, label, SFT a tiny all-in-one model, benchmark it on the mini suite")
    defaults = DemoSettings()
    for name, value in asdict(defaults).items():
        demo.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    settings = DemoSettings(**{name: getattr(args, name) for name in asdict(DemoSettings())})
    if settings.observe not in OBSERVES:
        raise ValueError(f"--observe {settings.observe!r} is not one of {', '.join(OBSERVES)}")
    use_image, use_text = OBSERVES[settings.observe]
    torch.set_num_threads(max(1, settings.workers // 2))  # small models: extra threads only contend
    out = settings.out
    timings: dict[str, float] = {}
    suite = load_suite()

    def stage(name: str, work):
        started = time.perf_counter()
        print(f"\n== {name}", flush=True)
        result = work()
        timings[name] = round(time.perf_counter() - started, 1)
        return result

    train = train_tasks(suite, settings.per_category)
    recorded = stage("record expert trajectories", lambda: record(
        "expert", train, settings.record_trials, out / "data" / "recording", workers=settings.workers))
    print(f"{recorded.planned} episodes planned, {recorded.recorded} run now, {recorded.steps} steps stored")
    labelled = out / "data" / "labelled"
    build = BuildConfig(history=settings.history, use_image=use_image, use_text=use_text)
    report = stage("label into every level", lambda: label(out / "data" / "recording", list(OUTPUT_FORMATS), labelled,
                                                           ALL_IN_ONE_WEIGHTS, build))
    init = out / "model" / "init"
    if not (init / "config.json").exists():
        stage("build the tiny model", lambda: create_tiny_model(init))
    sft = stage("cold-start SFT", lambda: run_sft(SFTSettings(
        model=str(init), dataset=str(labelled / MIX), output_dir=str(out / "model" / "sft"),
        max_steps=settings.sft_steps, batch_size=settings.batch_size, learning_rate=settings.learning_rate,
        save_steps=100, logging_steps=10)))
    mini = suite.mini
    store = out / RESULTS_FILE
    for agent in BASELINES:
        stage(f"benchmark {agent}", lambda agent=agent: run_benchmark(
            agent, mini, settings.eval_trials, settings.workers, store, suite.name, mini_ids=suite.mini_ids))
    evaluation = ModelEvaluation(sft.output_dir, MODEL_NAME, "mixed", ("slow", "fast", "dynamic"),
                                 settings.eval_trials, settings.history, settings.observe, settings.requery_every,
                                 EVAL_SAMPLING, settings.slots)
    speeds = stage("benchmark the SFT model", lambda: evaluate_model(evaluation, mini, suite.name, suite.mini_ids, out))
    keys = {(task.id, trial) for task in mini for trial in range(settings.eval_trials)}
    with ResultsStore(store) as results:
        summaries = summaries_from_store(results, {suite.name}, keys)
    paths = write_report(summaries, out)
    facts = {"settings": {k: str(v) for k, v in asdict(settings).items()}, "timings_s": timings,
             "sft": asdict(sft), "data": {name: d["kept"] for name, d in report["datasets"].items()},
             "eval_speed": {mode: vars(speed) | {"steps_per_second": speed.steps_per_second,
                                                 "tokens_per_second": speed.tokens_per_second}
                            for mode, speed in speeds.items()}}
    (out / "demo.json").write_text(json.dumps(facts, indent=1, default=str) + "\n")
    print(f"\n{suite.name}: mini suite, {len(mini)} tasks x {settings.eval_trials} trials per agent\n")
    print(format_table(summaries))
    print(f"\nstage times (s): {timings}")
    print(f"wrote {', '.join(str(p) for p in paths.values())}, {out / 'demo.json'}, "
          f"{out / 'model' / 'sft' / 'loss_curve.png'}")
    return 0
