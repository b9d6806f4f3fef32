"""`crossagent compare`: the comparison of docs/results.md, a preset of the pipeline (resumable).

One expert recording of the training split is labelled into every output format. From the
same initial tiny model, each row is cold-start SFT'd with the same budget (steps x batch) on
its own dataset, and evaluated on held-out tasks in its inference mode:

    raw-only (D_a) | motion, grounding, skill hierarchical agents (D_A, fast mode)
    motion-CoA, grounding-CoA (D_CoA, slow mode) | all-in-one SFT (the mix, dynamic mode)
    the all-in-one model prompted in each specialist's format (the seed paper's Table 4)
    all-in-one SFT + GRPO (CrossAgent: multi-turn GRPO from the all-in-one SFT model)
    all-in-one SFT + matched SFT (the all-in-one SFT continued for as many examples as GRPO sampled replies,
                                  or with --matched-examples trained, as its updates trained on)

The all-in-one, GRPO and matched rows are trained once per training seed (`--seeds`); the
tables give every seed's row and, across seeds, mean ± std and a 95 % interval. Stages run
`workers` at a time as their inputs become ready (every SFT at once, GRPO once its seed's
SFT is done, the matched SFT once its GRPO is, a row's evaluation once its model is).
Results: out/results.md (tables), out/level_shares.png (levels contained and executed, per
category), out/grpo_level_shares.png (before and after GRPO), out/results.sqlite (every
episode), out/comparison.json.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import stats

from crossagent.actions.levels import DECODED_LEVELS
from crossagent.agents.level_agent import REQUERY_EVERY
from crossagent.arguments import output_dir
from crossagent.bench.kind_outcomes import gained_and_lost, never_solved, successes_per_kind
from crossagent.bench.level_shares import plot_level_shares
from crossagent.bench.metrics import CategoryMetrics, Summary, summaries_from_store
from crossagent.bench.model_eval import EVAL_SAMPLING, ModelEvaluation, decoded_levels, stored_name
from crossagent.bench.report import asr_cell, markdown_table, number, percent
from crossagent.bench.results_store import RESULTS_FILE, EpisodeRow, ResultsStore
from crossagent.cli_options import add_options, config_from_args
from crossagent.data.builders import ALL_IN_ONE_WEIGHTS, MIX, BuildConfig
from crossagent.executors.registry import DEFAULT_CHECKPOINTS, LEARNED_LEVELS, SCRIPTED, Executors
from crossagent.models.prompts import LEARNED_FORMATS, LEVELS_OF_FORMAT, OBSERVES, OUTPUT_FORMATS, check_prompt_style
from crossagent.models.threads import DEFAULT_THREADS, use_threads
from crossagent.pipeline import (Pipeline, Stage, benchmark_stage, evaluation_stage, expert_data_stage, grpo_stage,
                                 label_stage, record_stage, run_pipeline, sft_stage, tiny_model_stage)
from crossagent.tasks.splits import heldout_tasks, train_tasks
from crossagent.tasks.suite import load_suite
from crossagent.tasks.task import CATEGORIES, task_kind
from crossagent.train import grpo
from crossagent.train.grpo_log import LEVEL_CSV
from crossagent.train.rollouts import PrefixKinds
from crossagent.train.sft import SFTSettings, bf16_is_fast

REFERENCES = ("random", "expert")  # scripted agents on the same tasks and trials, to read the rows against
RESULTS_MD = "results.md"
LEVEL_SHARES_PNG = "level_shares.png"
GRPO_LEVEL_SHARES_PNG = "grpo_level_shares.png"
# --matched-examples: which count of GRPO's result sizes the matched SFT
MATCHED_EXAMPLES = {"sampled": "turns", "trained": "trained_turns"}


@dataclass(frozen=True)
class Row:
    name: str
    dataset: str  # the labelled dataset it is SFT'd on (an output format, or the all-in-one mix)
    output_format: str  # the system prompt it is evaluated with
    mode: str  # inference mode (agents.level_agent.MODES)
    # sft; grpo (GRPO after the mix's SFT); matched (the mix's SFT continued for GRPO's turns); expert_matched (the
    # same, on the mix's data set and GRPO's failure demonstrations: the data GRPO learned from)
    training: str = "sft"
    seeded: bool = False  # trained once per training seed (--seeds); else with the first seed only

    def agent(self, executors: Executors = SCRIPTED, seed_label: str = "") -> str:
        """The name its episodes are stored under; a row that runs executors is named after them."""
        return stored_name(self.evaluated_with(executors).agent_name(self.name + seed_label), self.mode)

    def evaluated_with(self, executors: Executors) -> Executors:
        """The executors its episodes depend on: none in slow mode (raw actions only), the kind only where its
        format has a level with a learned executor (the latent level's codebook is read from the folder either way)."""
        levels = set(LEVELS_OF_FORMAT[self.output_format])
        if self.mode != "slow" and levels & set(LEARNED_LEVELS):
            return executors
        return Executors(SCRIPTED.kind, executors.checkpoints) if levels & set(DECODED_LEVELS) else SCRIPTED


ROWS = (
    Row("raw-only", "raw", "raw", "slow"),
    Row("motion HA (fast)", "motion", "motion", "fast"),
    Row("grounding HA (fast)", "grounding", "grounding", "fast"),
    Row("skill HA (fast)", "skill", "skill", "fast"),
    Row("motion-CoA (slow)", "motion_coa", "motion_coa", "slow"),
    Row("grounding-CoA (slow)", "grounding_coa", "grounding_coa", "slow"),
    Row("latent HA (fast)", "latent", "latent", "fast"),  # opt-in: needs the latent codebook (EXECUTORS_DIR/latent)
    Row("all-in-one as raw-only", MIX, "raw", "slow"),
    Row("all-in-one as motion HA", MIX, "motion", "fast"),
    Row("all-in-one as grounding HA", MIX, "grounding", "fast"),
    Row("all-in-one as skill HA", MIX, "skill", "fast"),
    Row("all-in-one as motion-CoA", MIX, "motion_coa", "slow"),
    Row("all-in-one as grounding-CoA", MIX, "grounding_coa", "slow"),
    Row("all-in-one SFT", MIX, "mixed", "dynamic", seeded=True),
    Row("all-in-one SFT + GRPO", MIX, "mixed", "dynamic", training="grpo", seeded=True),
    Row("all-in-one SFT + matched SFT", MIX, "mixed", "dynamic", training="matched", seeded=True),
    # Opt-in: needs GRPO's failure demonstrations (--grpo-failure-demonstrations-per-step).
    Row("all-in-one SFT + matched SFT with GRPO's expert data", MIX, "mixed", "dynamic", training="expert_matched",
        seeded=True),
)
GRPO_ROW, SFT_ROW, MATCHED_ROW, EXPERT_MATCHED_ROW = (
    next(row for row in ROWS if row.seeded and row.training == training)
    for training in ("grpo", "sft", "matched", "expert_matched"))
DEFAULT_ROWS = tuple(row for row in ROWS if row.dataset not in LEARNED_FORMATS and row is not EXPERT_MATCHED_ROW)


@dataclass
class ComparisonSettings:
    out: Path = Path("runs/compare")  # the run folder
    per_category: int | None = None  # training tasks per category with expert episodes for SFT (default: every one)
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
    # Emulated bf16 (a CPU without AVX-512) is many times slower than float32, so the default is this machine's.
    bf16: bool = field(default_factory=bf16_is_fast)  # SFT under bf16 autocast, eager attention (else fp32, sdpa)
    seeds: int = 1  # training seeds of the all-in-one, GRPO and matched rows: seed, seed + 1, ...
    grpo_updates: int = 8  # GRPO iterations of the GRPO row
    grpo_group_size: int = 4  # GRPO episodes per task from one start
    grpo_tasks_per_batch: int = 8  # GRPO groups trained on per iteration
    grpo_dynamic_sampling: bool = True  # roll out more tasks until that many groups have differing returns
    grpo_sampling_rounds: int = 3  # with dynamic sampling: at most this many batches of tasks per iteration
    grpo_max_episode_steps: int = 150  # caps each GRPO episode
    grpo_learning_rate: float = 1e-4  # GRPO learning rate
    grpo_warmup_steps: int = 0  # GRPO optimizer steps over which the learning rate rises from 0 (0: none)
    grpo_gradient_accumulation_steps: int = 4  # micro-batches of 16 turns per GRPO optimizer step
    grpo_epochs_per_batch: int = 1  # GRPO passes over each iteration's trained turns (clipped as in PPO)
    grpo_call_cost: float = 0.0  # GRPO reward: subtracted per model call (a price on not delegating)
    grpo_temperature: float = 1.0  # GRPO rollouts' sampling temperature (above 1: more exploration)
    grpo_update_turns_per_episode: int = 0  # GRPO trains on at most this many random turns per episode (0: all)
    grpo_settled_task_weight: float = 1.0  # GRPO curriculum: draw weight of tasks whose kind's last group was settled
    grpo_expert_prefix_share: float = 0.0  # GRPO: share of groups that start part of the way along the expert's run
    grpo_expert_prefix_earliest: float = 0.5  # GRPO: the earliest hand-over, as a fraction of the expert's steps
    grpo_expert_prefix_kinds: PrefixKinds = "all"  # GRPO: which groups may get a prefix: all, or those of failing kinds
    # GRPO: examples of the all-in-one SFT data set whose SFT loss joins every optimizer step (0: none); the
    # matched SFT counts them as examples too
    grpo_demonstrations_per_step: int = 0
    grpo_demonstration_coef: float = 1.0  # GRPO: the weight of that loss next to the GRPO loss
    # GRPO: examples per optimizer step of the expert's solutions of the run's groups that solved nothing (0: none;
    # train/failure_demonstrations.py); the matched SFT counts them as examples too
    grpo_failure_demonstrations_per_step: int = 0
    grpo_step_advantage_coef: float = 0.0  # GRPO: weight of the step-level (GiGPO) advantages (0: episode's only)
    grpo_step_discount: float = 0.95  # GRPO: per-call discount of the returns the step-level advantages compare
    # GRPO's tasks per category (default: every training task). Apart from --per-category: GRPO needs no expert,
    # so a cold start (SFT on a few tasks' demonstrations, as CrossAgent's) can still practise on every task.
    grpo_per_category: int | None = None
    # The matched SFT's examples: as many as GRPO's sampled replies (every turn rolled out, set-aside groups
    # included), or as the turns its updates trained on (fewer with dynamic sampling or a turn limit), times the
    # passes over them (--grpo-epochs-per-batch); either way plus GRPO's demonstrations.
    matched_examples: Literal["sampled", "trained"] = "sampled"
    slots: int = 30  # episodes evaluated side by side
    requery_every: int = REQUERY_EVERY  # fast/dynamic: re-query the model after k executor steps
    constrained: bool = True  # evaluation and GRPO rollout replies held to the output format's grammar
    executors: str = "scripted"  # what runs the fast and dynamic rows' upper levels: scripted or learned
    executors_dir: Path = DEFAULT_CHECKPOINTS  # learned executors' checkpoints (crossagent executors train)
    workers: int = 2  # stages (SFT runs, evaluations) run side by side
    threads: int = DEFAULT_THREADS  # torch CPU threads per stage (benchmarks/results/thread_speed.md)
    seed: int = 0  # seeds labelling, SFT and GRPO

    def training_seeds(self, row: Row) -> range:
        return range(self.seed, self.seed + (self.seeds if row.seeded else 1))

    def seed_label(self, seed: int) -> str:
        """What a seed adds to row, stage and folder names: nothing for the first (older runs stay valid)."""
        return "" if seed == self.seed else f" (seed {seed})"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("compare", help="train and evaluate every row of docs/results.md (resumable)")
    add_options(parser, ComparisonSettings, skip=("out",))
    parser.add_argument("--out", type=output_dir, default=ComparisonSettings.out, help="the run folder")
    parser.add_argument("--rows", default=",".join(row.name for row in DEFAULT_ROWS),
                        help="comma-separated row names to run (default: all but the latent row, which needs a "
                             "codebook: `crossagent executors train-latent --out EXECUTORS_DIR/latent`)")
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


def run_comparison(settings: ComparisonSettings, rows: Sequence[Row] = DEFAULT_ROWS) -> Path:
    if settings.observe not in OBSERVES:
        raise ValueError(f"--observe {settings.observe!r} is not one of {', '.join(OBSERVES)}")
    if settings.seeds < 1:
        raise ValueError(f"--seeds {settings.seeds}: at least 1")
    check_prompt_style(settings.prompt_style)
    if EXPERT_MATCHED_ROW in rows and not settings.grpo_failure_demonstrations_per_step:
        raise ValueError(f"the row {EXPERT_MATCHED_ROW.name!r} trains on GRPO's failure demonstrations: it needs "
                         "--grpo-failure-demonstrations-per-step above 0")
    use_threads(settings.threads)
    return run_pipeline(settings.out, settings.workers, lambda pipeline: _compare(pipeline, settings, rows),
                        settings.threads)


def _compare(pipeline: Pipeline, settings: ComparisonSettings, rows: Sequence[Row]) -> Path:
    out, suite = settings.out, load_suite()
    use_image, use_text = OBSERVES[settings.observe]
    executors = Executors(settings.executors, settings.executors_dir)
    needed = [*(LEARNED_LEVELS if any(row.evaluated_with(executors).learned for row in rows) else ()),
              *(level for row in rows for level in decoded_levels(row.output_format))]
    for level in dict.fromkeys(needed):
        executors.execute_fn(level)  # a missing checkpoint fails here, before any training
    train = train_tasks(suite, settings.per_category)
    recording = record_stage(out, train, settings.record_trials, settings.workers)
    build = BuildConfig(history=settings.history, use_image=use_image, use_text=use_text,
                        prompt_style=settings.prompt_style, seed=settings.seed, requery_every=settings.requery_every)
    labels = label_stage(out, recording, build, OUTPUT_FORMATS, ALL_IN_ONE_WEIGHTS, settings.workers)
    model = tiny_model_stage(out)  # every row starts from these weights and this tokenizer (but the latent row's)
    tasks = heldout_tasks(suite, None if settings.heldout_per_category < 0 else settings.heldout_per_category)
    facts = {"settings": {k: str(v) for k, v in vars(settings).items()}, "speed": {}}
    # Labelling reads the finished recording: it starts when the recording is done, beside the model's build.
    ready_labels = pipeline.run_all([recording, model], then=lambda done, _: [labels] if done is recording else [])
    facts["examples"] = ready_labels[labels.name]["examples"]
    # The latent row: codes labelled by the codebook's encoder, a model whose tokenizer has the code tokens.
    if any(row.dataset in LEARNED_FORMATS for row in rows):
        latent_labels = label_stage(out, recording, build, LEARNED_FORMATS, None, settings.workers,
                                    latent=Path(settings.executors_dir) / "latent")
        latent_model = tiny_model_stage(out, latent_codes=True)
        facts["examples"].update(pipeline.run_all([latent_labels, latent_model])[latent_labels.name]["examples"])
        starts = {dataset: (latent_model, latent_labels) for dataset in LEARNED_FORMATS}
    else:
        starts = {}
    for agent in REFERENCES:
        pipeline.run(benchmark_stage(out, agent, tasks, settings.trials, suite, settings.workers))

    def sft(dataset: str, seed: int, start: Stage | None = None, steps: int = settings.sft_steps,
            tag: str = "", data: Stage | None = None) -> Stage:
        """`start`: a trained stage to continue (its final weights), else the dataset's initial model; `data`: the
        stage whose folder holds `dataset` (default: the labelling's)."""
        label = settings.seed_label(seed)
        initial, dataset_labels = starts.get(dataset, (model, labels))
        dataset_labels = data or dataset_labels
        return sft_stage(f"SFT {dataset}{tag}{label}", out / "model" / _folder(f"{dataset}{tag}{label}"),
                         start or initial, dataset_labels.folder / dataset, dataset_labels,
                         SFTSettings(model="", dataset="", output_dir="", max_steps=steps,
                                     batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                                     save_steps=250, logging_steps=10, seed=seed, bf16=settings.bf16,
                                     attention="eager" if settings.bf16 else "sdpa", progress=settings.workers == 1),
                         weights="final" if start else "")

    def grpo_run(seed: int, start: Stage) -> Stage:
        label = settings.seed_label(seed)
        demonstrations = labels if settings.grpo_demonstrations_per_step else None  # the mix's own SFT examples
        return grpo_stage(f"GRPO{label}", out / "model" / _folder(f"grpo{label}"), start, grpo.GRPOConfig(
            model="", output_dir="", updates=settings.grpo_updates, group_size=settings.grpo_group_size,
            tasks_per_batch=settings.grpo_tasks_per_batch, dynamic_sampling=settings.grpo_dynamic_sampling,
            sampling_rounds=settings.grpo_sampling_rounds, max_episode_steps=settings.grpo_max_episode_steps,
            history_length=settings.history, requery_every=settings.requery_every, use_image=use_image,
            use_text=use_text, prompt_style=settings.prompt_style, learning_rate=settings.grpo_learning_rate,
            warmup_steps=settings.grpo_warmup_steps, call_cost=settings.grpo_call_cost,
            temperature=settings.grpo_temperature, update_turns_per_episode=settings.grpo_update_turns_per_episode,
            settled_task_weight=settings.grpo_settled_task_weight,
            expert_prefix_share=settings.grpo_expert_prefix_share,
            expert_prefix_earliest=settings.grpo_expert_prefix_earliest,
            expert_prefix_kinds=settings.grpo_expert_prefix_kinds, max_new_tokens=EVAL_SAMPLING.max_new_tokens,
            minibatch_size=16, gradient_accumulation_steps=settings.grpo_gradient_accumulation_steps,
            epochs_per_batch=settings.grpo_epochs_per_batch, checkpoint_every=2, seed=seed,
            constrained=settings.constrained, demonstrations_per_step=settings.grpo_demonstrations_per_step,
            demonstration_coef=settings.grpo_demonstration_coef,
            failure_demonstrations_per_step=settings.grpo_failure_demonstrations_per_step,
            step_advantage_coef=settings.grpo_step_advantage_coef, step_discount=settings.grpo_step_discount,
            demonstration_dataset=str(demonstrations.folder / MIX) if demonstrations else None),
            train_tasks(suite, settings.grpo_per_category), demonstrations)

    # Every model a row needs, by (dataset, training, seed); GRPO and the matched SFT are added when ready.
    models: dict[tuple[str, str, int], Stage] = {}
    for row in rows:
        for seed in settings.training_seeds(row):
            if (row.dataset, "sft", seed) not in models:
                models[row.dataset, "sft", seed] = sft(row.dataset, seed)
    wanted = {row.training for row in rows}
    matched_wanted = wanted & {"matched", "expert_matched"}
    expert_data: dict[str, tuple[int, int]] = {}  # the stage name of a GRPO run's data for SFT -> (seed, SFT steps)
    evaluations = {(row.name, seed): ModelEvaluation(
        "", row.evaluated_with(executors).agent_name(row.name + settings.seed_label(seed)), row.output_format,
        (row.mode,), settings.trials, settings.history, settings.observe, settings.requery_every, EVAL_SAMPLING,
        prompt_style=settings.prompt_style, slots=settings.slots, constrained=settings.constrained,
        executors=row.evaluated_with(executors)) for row in rows for seed in settings.training_seeds(row)}

    def ready(done: Stage, result: dict) -> list[Stage]:
        """What can run once `done` has: the evaluations of its model, GRPO after the mix's SFT, the matched SFTs
        after GRPO (they need GRPO's count of trained turns), the one with GRPO's expert data after that data."""
        if done.name in expert_data:
            seed, steps = expert_data[done.name]
            return [models.setdefault((MIX, "expert_matched", seed), sft(
                MIX, seed, start=models[MIX, "sft", seed], steps=steps, tag=" matched expert", data=done))]
        keys = [key for key, stage in models.items() if stage is done]
        if not keys:  # an evaluation
            return []
        (dataset, training, seed), = keys
        found = []
        if dataset == MIX and training == "sft" and wanted & {"grpo", "matched", "expert_matched"}:
            found.append(models.setdefault((MIX, "grpo", seed), grpo_run(seed, done)))
        if training == "grpo" and matched_wanted:
            examples = result.get(MATCHED_EXAMPLES[settings.matched_examples])
            if examples is None:
                raise ValueError(f"{done.folder}: its log counts no trained turns for the iterations run before "
                                 "the count was logged; use --matched-examples sampled, or retrain that GRPO run")
            if examples == 0:  # SFT would read 0 steps as "train by epochs"
                raise ValueError(f"{done.folder} trained on no turns (no group's returns differed): there is "
                                 "no compute to match")
            if settings.matched_examples == "trained":  # each pass over a trained turn is an example's compute
                examples *= settings.grpo_epochs_per_batch
            examples += result.get("demonstrations", 0)  # GRPO's SFT examples are the matched SFT's too
            steps = math.ceil(examples / settings.batch_size)
            if "matched" in wanted:
                found.append(models.setdefault((MIX, "matched", seed), sft(
                    MIX, seed, start=models[MIX, "sft", seed], steps=steps, tag=" matched")))
            if "expert_matched" in wanted:
                label = settings.seed_label(seed)
                data = expert_data_stage(f"GRPO's expert data{label}", out / "data" / _folder(f"grpo-expert{label}"),
                                         labels.folder / MIX, labels, done)
                expert_data[data.name] = seed, steps
                found.append(data)
        found += [evaluation_stage(f"evaluate {evaluations[row.name, seed].name}", out, done.folder / "final", done,
                                   evaluations[row.name, seed], tasks, suite)
                  for row in rows if (row.dataset, row.training) == (dataset, training)
                  and seed in settings.training_seeds(row)]
        return found

    results = pipeline.run_all(list(models.values()), then=ready)
    facts_file = out / "comparison.json"
    if facts_file.exists():  # models and rows of earlier runs (other --rows, --seeds or --executors) stay described
        earlier = json.loads(facts_file.read_text())
        facts["speed"], facts["trained"] = earlier.get("speed", {}), earlier.get("trained", {})
    facts.setdefault("trained", {}).update({stage.name: results[stage.name] for stage in models.values()})
    for (name, seed), evaluation in evaluations.items():
        speed = results[f"evaluate {evaluation.name}"][evaluation.modes[0]]
        facts["speed"][stored_name(evaluation.name, evaluation.modes[0])] = {
            "episodes": speed["episodes"], "env_steps": speed["env_steps"], "seconds": round(speed["seconds"], 1),
            "steps_per_second": speed["steps_per_second"]}
    facts["timings_s"] = pipeline.facts.get("seconds", {})
    facts_file.write_text(json.dumps(facts, indent=1, default=str) + "\n")

    keys = {(task.id, trial) for task in tasks for trial in range(settings.trials)}
    mini_keys = {key for key in keys if key[0] in suite.mini_ids}
    with ResultsStore(out / RESULTS_FILE) as store:
        heldout = _by_agent(summaries_from_store(store, {suite.name}, keys))
        mini = _by_agent(summaries_from_store(store, {suite.name}, mini_keys))
        episodes = {agent: [row for row in store.episodes(agent, suite.name) if (row.task_id, row.trial) in keys]
                    for agent in heldout}
    variants = [v for v in stored_variants(ROWS, settings, executors) if v.agent in heldout]  # earlier runs' too
    plot_level_shares([heldout[v.agent] for v in variants], out / LEVEL_SHARES_PNG,
                      grpo_log=out / "model" / "grpo" / LEVEL_CSV)
    before_after = [heldout[v.agent] for v in variants if v.row in (SFT_ROW, GRPO_ROW) and not v.learned]
    if before_after:
        plot_level_shares(before_after, out / GRPO_LEVEL_SHARES_PNG)
    path = out / RESULTS_MD
    path.write_text(results_markdown(variants, settings, heldout, mini, episodes, facts, len(tasks)))
    return path


def _folder(name: str) -> str:
    """A stage's folder name from its label: `mix matched (seed 1)` -> `mix-matched-seed1`."""
    return name.replace(" (seed ", "-seed").replace(")", "").replace(" ", "-")


@dataclass(frozen=True)
class Variant:
    """One line of the tables: a row, trained with one seed, evaluated with one kind of executors."""

    label: str
    row: Row
    seed: int
    learned: bool  # evaluated with learned executors
    agent: str  # the stored agent name


def stored_variants(rows: Sequence[Row], settings: ComparisonSettings, executors: Executors) -> list[Variant]:
    """Every row with each training seed, with scripted executors and, where they change its episodes, with
    learned ones (`executors`' checkpoints, or an earlier run's)."""
    learned = Executors("learned", executors.checkpoints)
    variants = []
    for row in rows:
        for seed in settings.training_seeds(row):
            label = settings.seed_label(seed)
            variants.append(Variant(row.name + label, row, seed, False, row.agent(SCRIPTED, label)))
            if row.evaluated_with(learned).learned:
                variants.append(Variant(f"{row.name}{label} + learned executors", row, seed, True,
                                        row.agent(learned, label)))
    return variants


def results_markdown(variants: Sequence[Variant], settings: ComparisonSettings, heldout: dict[str, Summary],
                     mini: dict[str, Summary], episodes: dict[str, list[EpisodeRow]], facts: dict,
                     task_count: int) -> str:
    steps_row = ["row", "mode", "training", *(f"{c} steps" for c in CATEGORIES), "agent steps/s", "calls/episode"]
    asr_row = ["row", *(f"{c} mini" for c in CATEGORIES), *(f"{c} held-out" for c in CATEGORIES),
               "overall held-out", "invalid %", "steps/call"]
    steps_lines, asr_lines = [], []
    for variant in variants:
        h, m = heldout[variant.agent], mini.get(variant.agent)
        speed = facts.get("speed", {}).get(variant.agent, {}).get("steps_per_second")
        steps_lines.append([variant.label, variant.row.mode, _training(variant, settings, facts),
                            *(number(c.avg_steps_success) if c else "-" for c in _per_category(h)), number(speed),
                            number(h.overall.calls_per_episode)])
        asr_lines.append([variant.label, *(asr_cell(c) for c in _per_category(m)),
                          *(asr_cell(c) for c in _per_category(h)), asr_cell(h.overall),
                          percent(h.overall.invalid_rate), number(h.overall.steps_per_call)])
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
        *seeds_section(variants, heldout),
        *grpo_section(variants, heldout),
        *kinds_section(variants, episodes),
        "## Steps to success and speed", "",
        "Steps: mean env steps of the successful held-out episodes. Agent steps/s: env steps per second of the "
        f"row's evaluation run (batched generation, one torch thread), while up to {settings.workers} jobs (SFT, "
        "GRPO, other evaluations) shared this machine's CPU: a rough guide, not a benchmark. Calls/episode: model "
        "calls per held-out episode.", "",
        markdown_table(steps_row, steps_lines, text_columns=3), "",
        f"Settings: `{json.dumps({k: str(v) for k, v in asdict(settings).items()})}`", "",
    ])


def across_seeds(values: Sequence[float]) -> tuple[float, float, tuple[float, float] | None]:
    """Mean, std (ddof=1) and the 95 % t-interval of the mean; no std or interval from one seed."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, float("nan"), None
    std = float(np.std(values, ddof=1))
    if std == 0:
        return mean, std, (mean, mean)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=std / math.sqrt(len(values)))
    return mean, std, (float(low), float(high))


def seeds_section(variants: Sequence[Variant], heldout: dict[str, Summary]) -> list[str]:
    """Per seeded row and executors: held-out ASR (each seed's mean over trials) across its training seeds."""
    groups: dict[tuple[Row, bool], list[Summary]] = {}
    for variant in variants:
        if variant.row.seeded:
            groups.setdefault((variant.row, variant.learned), []).append(heldout[variant.agent])
    lines = []
    for (row, learned), summaries in groups.items():
        if len(summaries) < 2:
            continue
        cells = []
        for category in CATEGORIES:
            if any(s.category(category) is None for s in summaries):
                cells.append("-")
                continue
            mean, std, _ = across_seeds([100 * s.category(category).asr for s in summaries])
            cells.append(f"{mean:.1f} ± {std:.1f}")
        mean, std, (low, high) = across_seeds([100 * s.overall.asr for s in summaries])
        lines.append([row.name + (" + learned executors" if learned else ""), str(len(summaries)), *cells,
                      f"{mean:.1f} ± {std:.1f}", f"[{low:.1f}, {high:.1f}]"])
    if not lines:
        return []
    header = ["row", "seeds", *(f"{c} held-out" for c in CATEGORIES), "overall held-out", "overall 95 % interval"]
    return ["## Across training seeds", "",
            "Each seed's held-out ASR is its mean over trials; mean ± std (ddof 1) across seeds, and the 95 % "
            "t-interval of the overall mean.", "", markdown_table(header, lines, text_columns=1), ""]


def grpo_section(variants: Sequence[Variant], heldout: dict[str, Summary]) -> list[str]:
    """Per seed (scripted executors): GRPO against its SFT start and against the matched-compute SFT."""
    by_seed: dict[int, dict[Row, Summary]] = {}
    for variant in variants:
        if variant.row in (SFT_ROW, GRPO_ROW, MATCHED_ROW, EXPERT_MATCHED_ROW) and not variant.learned:
            by_seed.setdefault(variant.seed, {})[variant.row] = heldout[variant.agent]
    # The matched SFT with GRPO's expert data gets its columns only where it was run (an opt-in row).
    against = [MATCHED_ROW, *([EXPERT_MATCHED_ROW] if any(EXPERT_MATCHED_ROW in f for f in by_seed.values()) else [])]
    lines = []
    for seed, found in sorted(by_seed.items()):
        if SFT_ROW not in found or GRPO_ROW not in found:
            continue
        start, after = found[SFT_ROW], found[GRPO_ROW]
        cells = [str(seed), percent(start.overall.asr), percent(after.overall.asr),
                 f"{100 * (after.overall.asr - start.overall.asr):+.1f}"]
        for row in against:
            other = found.get(row)
            cells += [percent(other.overall.asr) if other else "-",
                      f"{100 * (after.overall.asr - other.overall.asr):+.1f}" if other else "-"]
        lines.append([*cells, number(start.overall.calls_per_episode), number(after.overall.calls_per_episode)])
    if not lines:
        return []
    header = ["seed", "SFT start %", "after GRPO %", "GRPO - start", "matched SFT %", "GRPO - matched",
              *(["matched SFT with GRPO's expert data %", "GRPO - it"] if len(against) > 1 else []),
              "calls/episode before", "calls/episode after"]
    return ["## GRPO against its start and the matched-compute SFT", "",
            f"Held-out ASR, overall; the levels executed before and after: {GRPO_LEVEL_SHARES_PNG}.", "",
            markdown_table(header, lines, text_columns=1), ""]


def kinds_section(variants: Sequence[Variant], episodes: dict[str, list[EpisodeRow]]) -> list[str]:
    """Per seed (scripted executors): the held-out episodes GRPO and the matched SFT gained and lost per task kind
    against their start, and how many they solved of the kinds that no seed's start solved."""
    agents: dict[int, dict[Row, str]] = {}
    for variant in variants:
        if variant.row in (SFT_ROW, GRPO_ROW, MATCHED_ROW) and not variant.learned:
            agents.setdefault(variant.seed, {})[variant.row] = variant.agent
    solved = {seed: {row: successes_per_kind(episodes[agent]) for row, agent in found.items()}
              for seed, found in sorted(agents.items()) if SFT_ROW in found and GRPO_ROW in found}
    if not solved:
        return []
    hard = never_solved([found[SFT_ROW] for found in solved.values()])
    lines = []
    for seed, found in solved.items():
        hard_episodes = sum(task_kind(row.task_id) in hard for row in episodes[agents[seed][SFT_ROW]])
        cells = [str(seed)]
        for row in (GRPO_ROW, MATCHED_ROW):
            if row not in found:
                cells += ["-"] * 3
                continue
            gained, lost = gained_and_lost(found[SFT_ROW], found[row])
            cells += [str(gained), str(lost), f"{sum(found[row][kind] for kind in hard)} of {hard_episodes}"]
        lines.append(cells)
    header = ["seed", "GRPO: gained", "lost", "never-solved kinds", "matched SFT: gained", "lost", "never-solved kinds"]
    return ["## Per task kind: gained and lost against the start", "",
            "Held-out episodes, summed over task kinds (a task without its world): gained where the model solved more "
            "of a kind's episodes than its SFT start, lost where it solved fewer. Never-solved kinds: the episodes "
            f"solved of the {len(hard)} kinds that no seed's start solved ({', '.join(sorted(hard)) or 'none'}).", "",
            markdown_table(header, lines, text_columns=1), ""]


def _training(variant: Variant, settings: ComparisonSettings, facts: dict) -> str:
    sft = f"SFT {settings.sft_steps}x{settings.batch_size}"
    label = settings.seed_label(variant.seed)
    trained = facts.get("trained", {})
    if variant.row.training == "grpo":
        run = trained.get(f"GRPO{label}", {})
        return f"{sft} + GRPO {run.get('iterations', '?')} it. ({run.get('turns', '?')} turns)"
    if variant.row.training == "matched":
        run = trained.get(f"SFT {MIX} matched{label}", {})
        return f"{sft} + SFT {run.get('steps', '?')}x{settings.batch_size}"
    if variant.row.training == "expert_matched":
        run = trained.get(f"SFT {MIX} matched expert{label}", {})
        return f"{sft} + SFT {run.get('steps', '?')}x{settings.batch_size} (with GRPO's expert data)"
    return sft


def _by_agent(summaries: list[Summary]) -> dict[str, Summary]:
    return {summary.agent: summary for summary in summaries}


def _per_category(summary: Summary | None) -> list[CategoryMetrics | None]:
    """The summary's metrics in CATEGORIES order, None where it has no task of a category."""
    return [summary.category(category) if summary else None for category in CATEGORIES]
