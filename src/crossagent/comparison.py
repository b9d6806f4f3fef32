"""`crossagent compare`: the comparison of docs/results.md, end to end, resumable.

One expert recording of the training split is labelled into every output format. From the
same initial tiny model, each row is cold-start SFT'd with the same budget (steps x batch) on
its own dataset, and evaluated on held-out tasks in its inference mode:

    raw-only (D_a) | motion, grounding, skill hierarchical agents (D_A, fast mode)
    motion-CoA, grounding-CoA (D_CoA, slow mode) | all-in-one SFT (the mix, dynamic mode)
    all-in-one SFT + GRPO (CrossAgent: multi-turn GRPO from the all-in-one SFT model)

The GRPO row spends its SFT budget plus the GRPO iterations; the table states each row's
training compute. Results: out/results.md (tables), out/level_shares.png (levels contained
and executed, per category), out/results.sqlite (every episode), out/comparison.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from crossagent.bench.level_shares import plot_level_shares
from crossagent.bench.metrics import CategoryMetrics, Summary, summaries_from_store
from crossagent.bench.model_eval import EVAL_SAMPLING, ModelEvaluation, evaluate_model, stored_name
from crossagent.bench.report import asr_cell, markdown_table, number, percent
from crossagent.bench.results_store import RESULTS_FILE, ResultsStore
from crossagent.bench.runner import run_benchmark
from crossagent.data.builders import ALL_IN_ONE_WEIGHTS, BuildConfig
from crossagent.data.cli import MIX, label
from crossagent.data.recording import record
from crossagent.models.prompts import OBSERVES, OUTPUT_FORMATS
from crossagent.models.tiny_vlm import create_tiny_model
from crossagent.tasks.splits import heldout_tasks, train_tasks
from crossagent.tasks.suite import load_suite
from crossagent.tasks.task import CATEGORIES
from crossagent.train import grpo
from crossagent.train.sft import SFTSettings, run_sft

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

    @property
    def agent(self) -> str:
        return stored_name(self.name, self.mode)


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
    out: Path = Path("runs/compare")
    per_category: int = 10  # training tasks per category
    record_trials: int = 3
    heldout_per_category: int = 10  # held-out tasks per category besides the mini set (0: none; -1: all of them)
    trials: int = 2
    history: int = 1
    observe: str = "both"
    sft_steps: int = 300
    batch_size: int = 8
    learning_rate: float = 2e-3
    grpo_updates: int = 8
    grpo_group_size: int = 4
    grpo_tasks_per_batch: int = 6
    grpo_max_episode_steps: int = 100
    grpo_learning_rate: float = 1e-4
    slots: int = 30
    requery_every: int = 4
    workers: int = 2
    seed: int = 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("compare", help="train and evaluate every row of docs/results.md (resumable)")
    for name, value in asdict(ComparisonSettings()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--rows", default=",".join(row.name for row in ROWS),
                        help="comma-separated row names to run (default: all)")
    parser.set_defaults(run=run_comparison_command)


def run_comparison_command(args: argparse.Namespace) -> int:
    settings = ComparisonSettings(**{name: getattr(args, name) for name in asdict(ComparisonSettings())})
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
    torch.set_num_threads(1)  # a 1 M-parameter model: extra threads only contend
    out = settings.out
    suite = load_suite()
    facts = _load_facts(out)
    facts["settings"] = {k: str(v) for k, v in asdict(settings).items()}

    def stage(name: str, work):
        print(f"\n== {name}", flush=True)
        started = time.perf_counter()
        result = work()
        facts.setdefault("timings_s", {}).setdefault(name, round(time.perf_counter() - started, 1))
        _save_facts(out, facts)
        return result

    train = train_tasks(suite, settings.per_category)
    stage("record expert trajectories", lambda: record(
        "expert", train, settings.record_trials, out / "data" / "recording", workers=settings.workers))
    labelled = out / "data" / "labelled"
    use_image, use_text = OBSERVES[settings.observe]
    build = BuildConfig(history=settings.history, use_image=use_image, use_text=use_text, seed=settings.seed)
    if (labelled / "report.json").exists():
        _check_labels(labelled, build)
    else:
        stage("label into every level", lambda: label(
            out / "data" / "recording", list(OUTPUT_FORMATS), labelled, ALL_IN_ONE_WEIGHTS, build))
    facts["examples"] = {name: d["kept"] for name, d in json.loads((labelled / "report.json").read_text())[
        "datasets"].items()}
    init = out / "model" / "init"
    if not (init / "config.json").exists():
        create_tiny_model(init)  # every row starts from these weights and this tokenizer
    tasks = heldout_tasks(suite, None if settings.heldout_per_category < 0 else settings.heldout_per_category)
    for agent in REFERENCES:
        stage(f"benchmark {agent}", lambda agent=agent: run_benchmark(
            agent, tasks, settings.trials, settings.workers, out / RESULTS_FILE, suite.name, mini_ids=suite.mini_ids))
    sft_jobs = {dataset: SFTSettings(
        model=str(init), dataset=str(labelled / dataset), output_dir=str(out / "model" / dataset),
        max_steps=settings.sft_steps, batch_size=settings.batch_size, learning_rate=settings.learning_rate,
        save_steps=100, logging_steps=10, seed=settings.seed, progress=settings.workers == 1)
        for dataset in dict.fromkeys(row.dataset for row in rows)}
    grpo_config = grpo.GRPOConfig(
        model=str(out / "model" / MIX / "final"), output_dir=str(out / "model" / "grpo"), updates=settings.grpo_updates,
        group_size=settings.grpo_group_size, tasks_per_batch=settings.grpo_tasks_per_batch,
        max_episode_steps=settings.grpo_max_episode_steps, history_length=settings.history,
        requery_every=settings.requery_every, use_image=use_image, use_text=use_text,
        learning_rate=settings.grpo_learning_rate, max_new_tokens=EVAL_SAMPLING.max_new_tokens,
        minibatch_size=16, gradient_accumulation_steps=4, checkpoint_every=2, seed=settings.seed)

    def evaluation(row: Row, model: str) -> tuple:
        spec = ModelEvaluation(str(model), row.name, row.output_format, (row.mode,), settings.trials, settings.history,
                               settings.observe, settings.requery_every, EVAL_SAMPLING, settings.slots)
        return evaluate_model, spec, tasks, suite.name, suite.mini_ids, out, settings.workers == 1

    # Jobs run in `workers` processes as their inputs become ready: every SFT at once, GRPO once the
    # mix's SFT is done, a row's evaluation once its model is.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(settings.workers, mp_context=context, initializer=torch.set_num_threads,
                             initargs=(1,)) as pool:
        running = {pool.submit(_timed, run_sft, job): ("sft", dataset) for dataset, job in sft_jobs.items()}
        print(f"\n== {len(sft_jobs)} SFT runs, then GRPO and {len(rows)} evaluations, {settings.workers} at a time",
              flush=True)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                kind, name = running.pop(future)
                result, seconds = future.result()
                # The first completed run of a job is its measurement; a resumed re-run only finds it done.
                facts.setdefault("timings_s", {}).setdefault(f"{kind} {name}", seconds)
                print(f"   done: {kind} {name} ({seconds:.0f} s)", flush=True)
                if kind == "sft":
                    facts.setdefault("sft", {}).setdefault(name, asdict(result))
                    for row in rows:
                        if row.dataset == name and not row.grpo:
                            running[pool.submit(_timed, *evaluation(row, result.output_dir))] = ("evaluate", row.name)
                    if name == MIX and any(row.grpo for row in rows):
                        running[pool.submit(_timed, grpo.train, grpo_config, train)] = ("grpo", MIX)
                elif kind == "grpo":
                    facts["grpo"] = {"iterations": result.iterations, "final_model": result.final_model,
                                     "turns": _grpo_turns(Path(grpo_config.output_dir))}
                    for row in rows:
                        if row.grpo:
                            running[pool.submit(_timed, *evaluation(row, result.final_model))] = ("evaluate", row.name)
                else:
                    speed = next(iter(result.values()))
                    if speed.episodes:  # a resumed run that ran nothing keeps the speed measured before
                        facts.setdefault("speed", {})[name] = {
                            "episodes": speed.episodes, "env_steps": speed.env_steps,
                            "seconds": round(speed.seconds, 1), "steps_per_second": speed.steps_per_second}
                _save_facts(out, facts)

    keys = {(task.id, trial) for task in tasks for trial in range(settings.trials)}
    mini_keys = {key for key in keys if key[0] in suite.mini_ids}
    agents = [*(row.agent for row in ROWS), *REFERENCES]  # also rows from earlier --rows runs
    with ResultsStore(out / RESULTS_FILE) as store:
        heldout = _by_agent(summaries_from_store(store, {suite.name}, keys))
        mini = _by_agent(summaries_from_store(store, {suite.name}, mini_keys))
    plot_level_shares([heldout[agent] for agent in agents if agent in heldout and agent not in REFERENCES],
                      out / LEVEL_SHARES_PNG,
                      grpo_log=out / "model" / "grpo" / grpo.LEVEL_CSV)
    path = out / RESULTS_MD
    path.write_text(results_markdown(ROWS, settings, heldout, mini, facts, len(tasks)))
    return path


def results_markdown(rows, settings: ComparisonSettings, heldout: dict[str, Summary], mini: dict[str, Summary],
                     facts: dict, task_count: int) -> str:
    steps_row = ["row", "mode", "training", *(f"{c} steps" for c in CATEGORIES), "agent steps/s"]
    asr_row = ["row", *(f"{c} mini" for c in CATEGORIES), *(f"{c} held-out" for c in CATEGORIES),
               "overall held-out", "invalid %", "steps/call"]
    steps_lines, asr_lines = [], []
    for row in rows:
        agent = row.agent
        if agent not in heldout:
            continue
        h, m = heldout[agent], mini.get(agent)
        speed = facts.get("speed", {}).get(row.name, {}).get("steps_per_second")
        steps_lines.append([row.name, row.mode, _training(row, settings, facts),
                            *(number(c.avg_steps_success) if c else "-" for c in _per_category(h)), number(speed)])
        asr_lines.append([row.name, *(asr_cell(c) for c in _per_category(m)), *(asr_cell(c) for c in _per_category(h)),
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


def _check_labels(labelled: Path, build: BuildConfig) -> None:
    """Refuse labels built with other settings: resuming on them would mislabel every number after."""
    stored = json.loads((labelled / "report.json").read_text())["config"]
    wanted = {"history": build.history, "use_image": build.use_image, "use_text": build.use_text, "seed": build.seed}
    changed = {key: (stored.get(key), value) for key, value in wanted.items() if stored.get(key) != value}
    if changed:
        differences = ", ".join(f"{key}: {there} there, {asked} asked" for key, (there, asked) in changed.items())
        raise ValueError(f"{labelled} was labelled with other settings ({differences}); use another --out")


def _timed(function, *args):
    """Runs in a worker process: the result and the wall seconds it took."""
    started = time.perf_counter()
    return function(*args), round(time.perf_counter() - started, 1)


def _grpo_turns(run_dir: Path) -> int:
    with (run_dir / "grpo_log.csv").open() as file:
        return sum(int(row["turns"]) for row in csv.DictReader(file))


def _by_agent(summaries: list[Summary]) -> dict[str, Summary]:
    return {summary.agent: summary for summary in summaries}


def _per_category(summary: Summary | None) -> list[CategoryMetrics | None]:
    """The summary's metrics in CATEGORIES order, None where it has no task of a category."""
    return [summary.category(category) if summary else None for category in CATEGORIES]


def _load_facts(out: Path) -> dict:
    path = out / "comparison.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save_facts(out: Path, facts: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(facts, indent=1, default=str) + "\n")
