"""`crossagent compare`: the comparison of docs/results.md, a preset of the pipeline (resumable).

One expert recording of the training split is labelled into every output format. From the
same initial tiny model, each row is cold-start SFT'd with the same budget (steps x batch) on
its own dataset, and evaluated on held-out tasks in its inference mode:

    raw-only (D_a) | motion, grounding, skill hierarchical agents (D_A, fast mode)
    motion-CoA, grounding-CoA (D_CoA, slow mode) | all-in-one SFT (the mix, dynamic mode)
    all-in-one SFT + GRPO (CrossAgent: multi-turn GRPO from the all-in-one SFT model)

The GRPO row spends its SFT budget plus the GRPO iterations; the table states each row's
training compute. Stages run `workers` at a time as their inputs become ready (every SFT at
once, GRPO once the mix's SFT is done, a row's evaluation once its model is). Results:
out/results.md (tables), out/level_shares.png (levels contained and executed, per category),
out/results.sqlite (every episode), out/comparison.json.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from crossagent.agents.level_agent import REQUERY_EVERY
from crossagent.arguments import output_dir
from crossagent.bench.level_shares import plot_level_shares
from crossagent.bench.metrics import CategoryMetrics, Summary, summaries_from_store
from crossagent.bench.model_eval import EVAL_SAMPLING, ModelEvaluation, stored_name
from crossagent.bench.report import asr_cell, markdown_table, number, percent
from crossagent.bench.results_store import RESULTS_FILE, ResultsStore
from crossagent.cli_options import add_options, config_from_args
from crossagent.data.builders import ALL_IN_ONE_WEIGHTS, MIX, BuildConfig
from crossagent.executors.registry import DEFAULT_CHECKPOINTS, LEARNED_LEVELS, SCRIPTED, Executors
from crossagent.models.prompts import OBSERVES, OUTPUT_FORMATS, check_prompt_style
from crossagent.models.threads import DEFAULT_THREADS, use_threads
from crossagent.pipeline import (Pipeline, Stage, benchmark_stage, evaluation_stage, grpo_stage, label_stage,
                                 record_stage, run_pipeline, sft_stage, tiny_model_stage)
from crossagent.tasks.splits import heldout_tasks, train_tasks
from crossagent.tasks.suite import load_suite
from crossagent.tasks.task import CATEGORIES
from crossagent.train import grpo
from crossagent.train.grpo_log import LEVEL_CSV
from crossagent.train.sft import SFTSettings

REFERENCES = ("random", "expert")  # scripted agents on the same tasks and trials, to read the rows against
RESULTS_MD = "results.md"
LEVEL_SHARES_PNG = "level_shares.png"


@dataclass(frozen=True)
class Row:
    name: str
    dataset: str  # the labelled dataset it is SFT'd on (an output format, or the all-in-one mix)
    output_format: str  # the system prompt it is evaluated with
    mode: str  # inference mode (agents.level_agent.MODES)
    grpo: bool = False  # GRPO after SFT

    def agent(self, executors: Executors = SCRIPTED) -> str:
        """The name its episodes are stored under; a row that runs executors is named after them."""
        return stored_name(self.evaluated_with(executors).agent_name(self.name), self.mode)

    def evaluated_with(self, executors: Executors) -> Executors:
        """Slow mode executes raw actions only: its episodes do not depend on the executors."""
        return SCRIPTED if self.mode == "slow" else executors


ROWS = (
    Row("raw-only", "raw", "raw", "slow"),
    Row("motion HA (fast)", "motion", "motion", "fast"),
    Row("grounding HA (fast)", "grounding", "grounding", "fast"),
    Row("skill HA (fast)", "skill", "skill", "fast"),
    Row("motion-CoA (slow)", "motion_coa", "motion_coa", "slow"),
    Row("grounding-CoA (slow)", "grounding_coa", "grounding_coa", "slow"),
    Row("all-in-one SFT", MIX, "mixed", "dynamic"),
    Row("all-in-one SFT + GRPO", MIX, "mixed", "dynamic", grpo=True),
)


@dataclass
class ComparisonSettings:
    out: Path = Path("runs/compare")  # the run folder
    per_category: int | None = None  # training tasks per category (default: every training task)
    record_trials: int = 2  # expert episodes per training task
    heldout_per_category: int = -1  # held-out tasks per category besides the mini set (0: none; -1: all of them)
    trials: int = 2  # evaluation trials per held-out task
    # The model recipe is the demo's (crossagent.demo.DemoSettings): the README's model, one row of this table.
    history: int = 0  # turns of history in prompts
    observe: str = "text"  # what the models read: image, text (the text view) or both
    prompt_style: str = "compact"  # compact (the format's tag; for the tiny model) or full (the system prompt)
    sft_steps: int = 3000  # SFT optimizer steps of every row (the same budget)
    batch_size: int = 16  # SFT examples per step
    learning_rate: float = 2e-3  # SFT learning rate
    bf16: bool = True  # SFT under bf16 autocast with eager attention (faster on a CPU: sft_speed.md)
    executors: str = "scripted"  # what runs the fast and dynamic rows' upper levels: scripted or learned
    executors_dir: Path = DEFAULT_CHECKPOINTS  # learned executors' checkpoints (crossagent executors train)
    grpo_updates: int = 8  # GRPO iterations of the GRPO row
    grpo_group_size: int = 4  # GRPO episodes per task from one start
    grpo_tasks_per_batch: int = 6  # GRPO tasks per iteration
    grpo_max_episode_steps: int = 100  # caps each GRPO episode
    grpo_learning_rate: float = 1e-4  # GRPO learning rate
    slots: int = 30  # episodes evaluated side by side
    requery_every: int = REQUERY_EVERY  # fast/dynamic: re-query the model after k executor steps
    constrained: bool = True  # evaluation and GRPO rollout replies held to the output format's grammar
    workers: int = 2  # stages (SFT runs, evaluations) run side by side
    threads: int = DEFAULT_THREADS  # torch CPU threads per stage (benchmarks/results/thread_speed.md)
    seed: int = 0  # seeds labelling, SFT and GRPO


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("compare", help="train and evaluate every row of docs/results.md (resumable)")
    add_options(parser, ComparisonSettings, skip=("out",))
    parser.add_argument("--out", type=output_dir, default=ComparisonSettings.out, help="the run folder")
    parser.add_argument("--rows", default=",".join(row.name for row in ROWS),
                        help="comma-separated row names to run (default: all)")
    parser.set_defaults(run=run_comparison_command)


def run_comparison_command(args: argparse.Namespace) -> int:
    settings = config_from_args(args, ComparisonSettings, out=args.out)
    names = [name.strip() for name in args.rows.split(",") if name.strip()]
    unknown = sorted(set(names) - {row.name for row in ROWS})
    if unknown:
        raise ValueError(f"--rows: unknown row(s) {', '.join(unknown)} (known: {', '.join(r.name for r in ROWS)})")
    path = run_comparison(settings, [row for row in ROWS if row.name in names])
    print(path.read_text())
    return 0


def run_comparison(settings: ComparisonSettings, rows: tuple[Row, ...] | list[Row] = ROWS) -> Path:
    if settings.observe not in OBSERVES:
        raise ValueError(f"--observe {settings.observe!r} is not one of {', '.join(OBSERVES)}")
    check_prompt_style(settings.prompt_style)
    use_threads(settings.threads)
    return run_pipeline(settings.out, settings.workers, lambda pipeline: _compare(pipeline, settings, rows),
                        settings.threads)


def _compare(pipeline: Pipeline, settings: ComparisonSettings, rows: tuple[Row, ...] | list[Row]) -> Path:
    out, suite = settings.out, load_suite()
    use_image, use_text = OBSERVES[settings.observe]
    executors = Executors(settings.executors, settings.executors_dir)
    if any(row.evaluated_with(executors).learned for row in rows):
        for level in LEARNED_LEVELS:
            executors.execute_fn(level)  # a missing checkpoint fails here, before any training
    train = train_tasks(suite, settings.per_category)
    recording = record_stage(out, train, settings.record_trials, settings.workers)
    labels = label_stage(out, recording, BuildConfig(history=settings.history, use_image=use_image, use_text=use_text,
                                                     prompt_style=settings.prompt_style, seed=settings.seed,
                                                     requery_every=settings.requery_every),
                         OUTPUT_FORMATS, ALL_IN_ONE_WEIGHTS, settings.workers)
    model = tiny_model_stage(out)  # every row starts from these weights and this tokenizer
    tasks = heldout_tasks(suite, None if settings.heldout_per_category < 0 else settings.heldout_per_category)
    facts = {"settings": {k: str(v) for k, v in vars(settings).items()}, "speed": {}}
    facts["examples"] = pipeline.run_all([recording, labels, model])[labels.name]["examples"]
    for agent in REFERENCES:
        pipeline.run(benchmark_stage(out, agent, tasks, settings.trials, suite, settings.workers))
    sfts = {dataset: sft_stage(f"SFT {dataset}", out / "model" / dataset, model, labels.folder / dataset, labels,
                               SFTSettings(model="", dataset="", output_dir="", max_steps=settings.sft_steps,
                                           batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                                           save_steps=250, logging_steps=10, seed=settings.seed,
                                           bf16=settings.bf16, attention="eager" if settings.bf16 else "sdpa",
                                           progress=settings.workers == 1))
            for dataset in dict.fromkeys(row.dataset for row in rows)}
    grpo_run = grpo_stage("GRPO", out / "model" / "grpo", sfts[MIX], grpo.GRPOConfig(
        model="", output_dir="", updates=settings.grpo_updates, group_size=settings.grpo_group_size,
        tasks_per_batch=settings.grpo_tasks_per_batch, max_episode_steps=settings.grpo_max_episode_steps,
        history_length=settings.history, requery_every=settings.requery_every, use_image=use_image,
        use_text=use_text, prompt_style=settings.prompt_style, learning_rate=settings.grpo_learning_rate,
        max_new_tokens=EVAL_SAMPLING.max_new_tokens, minibatch_size=16, gradient_accumulation_steps=4,
        checkpoint_every=2, seed=settings.seed, constrained=settings.constrained), train) \
        if MIX in sfts else None
    evaluations = {row.name: ModelEvaluation("", row.evaluated_with(executors).agent_name(row.name), row.output_format,
                                             (row.mode,), settings.trials, settings.history, settings.observe,
                                             settings.requery_every, EVAL_SAMPLING, prompt_style=settings.prompt_style,
                                             slots=settings.slots, constrained=settings.constrained,
                                             executors=row.evaluated_with(executors))
                   for row in rows}

    def ready(done: Stage, result: dict) -> list[Stage]:
        """What can run once `done` has: the rows' evaluations of its model, GRPO after the mix's SFT."""
        trained = [row for row in rows if (row.grpo and done is grpo_run) or
                   (not row.grpo and done is sfts.get(row.dataset))]
        found = [evaluation_stage(f"evaluate {evaluations[row.name].name}", out, done.folder / "final", done, evaluations[row.name],
                                  tasks, suite) for row in trained]
        if done is sfts.get(MIX) and any(row.grpo for row in rows):
            found.append(grpo_run)
        return found

    results = pipeline.run_all(list(sfts.values()), then=ready)
    facts["sft"] = {dataset: results[stage.name] for dataset, stage in sfts.items()}
    if grpo_run is not None and grpo_run.name in results:
        facts["grpo"] = results[grpo_run.name]
    facts_file = out / "comparison.json"
    if facts_file.exists():  # rows evaluated by earlier runs (other --rows or --executors) keep their speed
        facts["speed"] = json.loads(facts_file.read_text()).get("speed", {})
    for row in rows:
        speed = results[f"evaluate {evaluations[row.name].name}"][row.mode]
        facts["speed"][row.agent(executors)] = {"episodes": speed["episodes"], "env_steps": speed["env_steps"],
                                                "seconds": round(speed["seconds"], 1),
                                                "steps_per_second": speed["steps_per_second"]}
    facts["timings_s"] = pipeline.facts.get("seconds", {})
    facts_file.write_text(json.dumps(facts, indent=1, default=str) + "\n")

    keys = {(task.id, trial) for task in tasks for trial in range(settings.trials)}
    mini_keys = {key for key in keys if key[0] in suite.mini_ids}
    variants = _stored_variants(ROWS, executors)  # also rows from earlier --rows or --executors runs
    with ResultsStore(out / RESULTS_FILE) as store:
        heldout = _by_agent(summaries_from_store(store, {suite.name}, keys))
        mini = _by_agent(summaries_from_store(store, {suite.name}, mini_keys))
    plot_level_shares([heldout[agent] for _, _, agent in variants if agent in heldout],
                      out / LEVEL_SHARES_PNG, grpo_log=out / "model" / "grpo" / LEVEL_CSV)
    path = out / RESULTS_MD
    path.write_text(results_markdown(variants, settings, heldout, mini, facts, len(tasks)))
    return path


def _stored_variants(rows, executors: Executors) -> list[tuple[str, Row, str]]:
    """(label, row, stored agent) of every row with scripted executors and, where they change its episodes,
    with learned ones (from `executors`' checkpoints, or an earlier run's): a table shows those it has episodes of."""
    learned = Executors("learned", executors.checkpoints)
    variants = []
    for row in rows:
        variants.append((row.name, row, row.agent(SCRIPTED)))
        if row.evaluated_with(learned).learned:
            variants.append((f"{row.name} + learned executors", row, row.agent(learned)))
    return variants


def results_markdown(variants: list[tuple[str, Row, str]], settings: ComparisonSettings, heldout: dict[str, Summary],
                     mini: dict[str, Summary], facts: dict, task_count: int) -> str:
    steps_row = ["row", "mode", "training", *(f"{c} steps" for c in CATEGORIES), "agent steps/s"]
    asr_row = ["row", *(f"{c} mini" for c in CATEGORIES), *(f"{c} held-out" for c in CATEGORIES),
               "overall held-out", "invalid %", "steps/call"]
    steps_lines, asr_lines = [], []
    for label, row, agent in variants:
        if agent not in heldout:
            continue
        h, m = heldout[agent], mini.get(agent)
        speed = facts.get("speed", {}).get(agent, {}).get("steps_per_second")
        steps_lines.append([label, row.mode, _training(row, settings, facts),
                            *(number(c.avg_steps_success) if c else "-" for c in _per_category(h)), number(speed)])
        asr_lines.append([label, *(asr_cell(c) for c in _per_category(m)), *(asr_cell(c) for c in _per_category(h)),
                          asr_cell(h.overall), percent(h.overall.invalid_rate), number(h.overall.steps_per_call)])
    for agent in REFERENCES:
        if agent in heldout:
            asr_lines.append([f"({agent}, reference)", *(asr_cell(c) for c in _per_category(mini.get(agent))),
                              *(asr_cell(c) for c in _per_category(heldout[agent])), asr_cell(heldout[agent].overall), "-",
                              "-"])
    return "\n".join([
        "# Comparison", "",
        f"Held-out evaluation: {task_count} tasks (the mini set and "
        f"{'all' if settings.heldout_per_category < 0 else settings.heldout_per_category} other held-out tasks per "
        f"category) x {settings.trials} trials; ASR % ± std across trials.", "",
        "## Success", "", markdown_table(asr_row, asr_lines, text_columns=1), "",
        "## Steps to success and speed", "",
        "Steps: mean env steps of the successful held-out episodes. Agent steps/s: env steps per second of the "
        f"row's evaluation run (batched generation, one torch thread), while up to {settings.workers} jobs (SFT, "
        "GRPO, other evaluations) shared this machine's CPU: a rough guide, not a benchmark.", "",
        markdown_table(steps_row, steps_lines, text_columns=3), "",
        f"Settings: `{json.dumps({k: str(v) for k, v in asdict(settings).items()})}`", "",
    ])


def _training(row: Row, settings: ComparisonSettings, facts: dict) -> str:
    sft = f"SFT {settings.sft_steps}x{settings.batch_size}"
    if not row.grpo:
        return sft
    run = facts.get("grpo", {})
    return f"{sft} + GRPO {run.get('iterations', '?')} it. ({run.get('turns', '?')} turns)"


def _by_agent(summaries: list[Summary]) -> dict[str, Summary]:
    return {summary.agent: summary for summary in summaries}


def _per_category(summary: Summary | None) -> list[CategoryMetrics | None]:
    """The summary's metrics in CATEGORIES order, None where it has no task of a category."""
    return [summary.category(category) if summary else None for category in CATEGORIES]
