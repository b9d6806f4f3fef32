"""`crossagent demo`: the README's main job, end to end on the embedded world, on a CPU.

A preset of the pipeline (crossagent.pipeline): record the expert on training tasks (never the
mini set), label the steps into every action level and the all-in-one mix, build a tiny Qwen2-VL
(random weights, tokenizer trained here), cold-start SFT it, and benchmark it on the mini suite
in slow, fast and dynamic modes next to the random agent and the scripted expert; print the table
and write the report (Markdown, JSON, PNG). Every stage resumes; a folder built with other
settings is refused.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from crossagent.agents.level_agent import REQUERY_EVERY
from crossagent.arguments import output_dir
from crossagent.bench.metrics import summaries_from_store
from crossagent.bench.model_eval import EVAL_SAMPLING, ModelEvaluation
from crossagent.bench.report import format_table, write_report
from crossagent.bench.results_store import RESULTS_FILE, ResultsStore
from crossagent.cli_options import add_options, config_from_args
from crossagent.data.builders import ALL_IN_ONE_WEIGHTS, MIX, BuildConfig
from crossagent.models.prompts import OBSERVES, OUTPUT_FORMATS, check_prompt_style
from crossagent.models.threads import DEFAULT_THREADS, use_threads
from crossagent.pipeline import (Pipeline, benchmark_stage, evaluation_stage, label_stage, record_stage, run_pipeline,
                                 sft_stage, tiny_model_stage)
from crossagent.tasks.splits import train_tasks
from crossagent.tasks.suite import load_suite
from crossagent.train.sft import SFTSettings, bf16_is_fast

MODEL_NAME = "sft-all-in-one"
BASELINES = ("expert", "random")


@dataclass
class DemoSettings:
    out: Path = Path("runs/demo")  # the run folder
    per_category: int | None = None  # training tasks per category (default: every training task)
    record_trials: int = 2  # expert episodes per training task
    history: int = 0  # turns of history in prompts (the text view's achievements line is the model's memory)
    observe: str = "text"  # what the model reads: image, text (the text view, the cheap signal on a CPU) or both
    prompt_style: str = "compact"  # compact (the format's tag; fits the tiny model) or full (the system prompt)
    sft_steps: int = 3000  # optimizer steps of cold-start SFT
    batch_size: int = 16  # SFT examples per step
    learning_rate: float = 2e-3  # SFT learning rate
    # Emulated bf16 (a CPU without AVX-512) is many times slower than float32, so the default is this machine's.
    bf16: bool = field(default_factory=bf16_is_fast)  # SFT under bf16 autocast, eager attention (else fp32, sdpa)
    eval_trials: int = 1  # trials per mini task (2+ for a spread across trials)
    slots: int = 30  # episodes evaluated side by side: one generate call for all of them
    requery_every: int = REQUERY_EVERY  # fast/dynamic: re-query the model after k executor steps
    constrained: bool = True  # evaluation replies held to the output format's grammar
    workers: int = 2  # processes for recording and the scripted baselines
    threads: int = DEFAULT_THREADS  # torch CPU threads of SFT and evaluation (benchmarks/results/thread_speed.md)


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="record, label, SFT a tiny all-in-one model, benchmark it on the mini suite")
    add_options(demo, DemoSettings, skip=("out",))
    demo.add_argument("--out", type=output_dir, default=DemoSettings.out, help="the run folder (default: runs/demo)")
    demo.set_defaults(run=lambda args: run_demo(config_from_args(args, DemoSettings, out=args.out)))


def run_demo(settings: DemoSettings) -> int:
    if settings.observe not in OBSERVES:
        raise ValueError(f"--observe {settings.observe!r} is not one of {', '.join(OBSERVES)}")
    check_prompt_style(settings.prompt_style)
    use_threads(settings.threads)
    return run_pipeline(settings.out, 1, lambda pipeline: _demo(pipeline, settings))


def _demo(pipeline: Pipeline, settings: DemoSettings) -> int:
    out, suite = settings.out, load_suite()
    use_image, use_text = OBSERVES[settings.observe]
    recording = record_stage(out, train_tasks(suite, settings.per_category), settings.record_trials, settings.workers)
    labels = label_stage(out, recording, BuildConfig(history=settings.history, use_image=use_image, use_text=use_text,
                                                     prompt_style=settings.prompt_style,
                                                     requery_every=settings.requery_every),
                         OUTPUT_FORMATS, ALL_IN_ONE_WEIGHTS, settings.workers)
    model = tiny_model_stage(out)
    sft = sft_stage("cold-start SFT", out / "model" / "sft", model, labels.folder / MIX, labels, SFTSettings(
        model="", dataset="", output_dir="", max_steps=settings.sft_steps, batch_size=settings.batch_size,
        learning_rate=settings.learning_rate, save_steps=250, logging_steps=10, bf16=settings.bf16,
        attention="eager" if settings.bf16 else "sdpa"))
    evaluation = ModelEvaluation("", MODEL_NAME, "mixed", ("slow", "fast", "dynamic"), settings.eval_trials,
                                 settings.history, settings.observe, settings.requery_every, EVAL_SAMPLING,
                                 prompt_style=settings.prompt_style, slots=settings.slots,
                                 constrained=settings.constrained)
    stages = [recording, labels, model, sft,
              *(benchmark_stage(out, agent, suite.mini, settings.eval_trials, suite, settings.workers)
                for agent in BASELINES),
              evaluation_stage("benchmark the SFT model", out, sft.folder / "final", sft, evaluation, suite.mini, suite)]
    results = {stage.name: pipeline.run(stage) for stage in stages}
    keys = {(task.id, trial) for task in suite.mini for trial in range(settings.eval_trials)}
    with ResultsStore(out / RESULTS_FILE) as store:
        summaries = summaries_from_store(store, {suite.name}, keys)
    paths = write_report(summaries, out)
    facts = {"settings": {k: str(v) for k, v in vars(settings).items()}, "timings_s": pipeline.facts.get("seconds"),
             "sft": results["cold-start SFT"], "data": results["label into every level"]["examples"],
             "eval_speed": results["benchmark the SFT model"]}
    (out / "demo.json").write_text(json.dumps(facts, indent=1, default=str) + "\n")
    print(f"\n{suite.name}: mini suite, {len(suite.mini)} tasks x {settings.eval_trials} trials per agent\n")
    print(format_table(summaries))
    print(f"\nstage times (s): {pipeline.facts.get('seconds')}")
    print(f"wrote {', '.join(str(p) for p in paths.values())}, {out / 'demo.json'}, "
          f"{out / 'model' / 'sft' / 'loss_curve.png'}")
    return 0
