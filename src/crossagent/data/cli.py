"""`crossagent data record|label|stats`: record trajectories, label them into SFT datasets, count them."""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import Counter
from pathlib import Path

from crossagent.agents.level_agent import REQUERY_EVERY
from crossagent.arguments import int_in_range, output_dir, positive_int
from crossagent.data.builders import MIXED_LEVELS, REPORT, BuildConfig, label
from crossagent.data.level_verification import DEFAULT_BUDGET, shares_table
from crossagent.data.recording import (DEFAULT_IMAGE_SIZE, DEFAULT_SHARD_EPISODES, load_trajectories,
                                       read_manifest, record)
from crossagent.models.prompts import (DEFAULT_HISTORY, KNOWN_FORMATS, LEARNED_FORMATS, OBSERVES, OUTPUT_FORMATS,
                                      PROMPT_STYLES)
from crossagent.progress import quiet_library_bars
from crossagent.tasks.splits import heldout_tasks, sample_per_category, train_tasks
from crossagent.tasks.suite import load_suite
from crossagent.tasks.task import CATEGORIES, Task

SPLITS = ("train", "heldout", "full")
_TOKENS = re.compile(r"<\|[a-z_0-9]+\|>|[^\s<]+|<")  # special tokens whole, the rest split on whitespace


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="record trajectories, label them into SFT datasets, count them",
                                   description=__doc__)
    commands = parser.add_subparsers(dest="data_command", required=True)

    rec = commands.add_parser("record", help="record an agent's episodes (resumable)")
    rec.add_argument("--agent", default="expert")
    rec.add_argument("--suite-file", help="a suite JSON file (default: the packaged suite)")
    rec.add_argument("--split", choices=SPLITS, default="train")
    rec.add_argument("--per-category", type=positive_int, default=None, help="N tasks of each category, spread over its templates")
    rec.add_argument("--trials", type=positive_int, default=1)
    rec.add_argument("--out", required=True, type=output_dir)
    rec.add_argument("--workers", type=positive_int, default=1)
    rec.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE)
    rec.add_argument("--shard-episodes", type=int, default=DEFAULT_SHARD_EPISODES)
    rec.add_argument("--keep-failed", action="store_true", help="also store unsuccessful episodes")
    rec.set_defaults(run=run_record)

    lab = commands.add_parser("label", help="label a recording into one SFT dataset per output format")
    lab.add_argument("--data", required=True, help="a folder written by `data record`")
    lab.add_argument("--formats", default=",".join(OUTPUT_FORMATS),
                     help=f"comma-separated output formats, of {', '.join(KNOWN_FORMATS)} (default: "
                          f"{','.join(OUTPUT_FORMATS)}; {', '.join(LEARNED_FORMATS)} needs --latent)")
    lab.add_argument("--latent", type=Path, default=None,
                     help="the latent codebook's checkpoint (`crossagent executors train-latent`): labels the latent "
                          "format")
    lab.add_argument("--mix", default="uniform",
                     help="all-in-one mix: FORMAT=WEIGHT,... or `uniform` over --formats, or `none`")
    lab.add_argument("--out", required=True, type=output_dir)
    lab.add_argument("--history", type=int, default=DEFAULT_HISTORY)
    lab.add_argument("--observe", default="image", choices=OBSERVES,
                     help="what the model reads: the image, the text view, or both")
    lab.add_argument("--prompt-style", default="full", choices=PROMPT_STYLES,
                     help="full: the human-readable system prompt (real VLMs); compact: the format's tag only "
                          "(small models trained from scratch)")
    lab.add_argument("--keep-noop", type=float, default=0.0, help="share of no-op steps kept")
    lab.add_argument("--seed", type=int, default=0)
    lab.add_argument("--requery-every", type=int_in_range(0), default=REQUERY_EVERY,
                     help="keep the steps the evaluation asks at: an upper-level reply covers up to k steps "
                          f"(default: {REQUERY_EVERY}, as eval-model); 0: keep every step")
    lab.add_argument("--mixed-levels", choices=MIXED_LEVELS, default="verified",
                     help="the mixed format's chain per step: ends at the step's verified level, or drawn at random")
    lab.add_argument("--verify-budget", type=positive_int, default=DEFAULT_BUDGET,
                     help="primitive steps an executor gets to reach the expert's next subgoal when verifying")
    lab.add_argument("--suite-file", help="the suite JSON file the recording's tasks come from (default: the packaged suite)")
    lab.add_argument("--workers", type=positive_int, default=1, help="processes verifying the levels")
    lab.set_defaults(run=run_label)

    stats = commands.add_parser("stats", help="counts and token lengths of a recording or a labelled folder")
    stats.add_argument("--data", required=True)
    stats.add_argument("--tokenizer", default=None, help="a saved Hugging Face tokenizer (default: whitespace count)")
    stats.set_defaults(run=run_stats)


# --- record ------------------------------------------------------------------------------------
def select_tasks(split: str, per_category: int | None, suite_path: str | None = None) -> tuple[Task, ...]:
    suite = load_suite(suite_path)
    if split == "train":
        return train_tasks(suite, per_category)
    tasks = heldout_tasks(suite) if split == "heldout" else suite.tasks
    return tasks if per_category is None else sample_per_category(tasks, per_category)


def run_record(args: argparse.Namespace) -> int:
    quiet_library_bars()
    tasks = select_tasks(args.split, args.per_category, args.suite_file)
    run = record(args.agent, tasks, args.trials, args.out, image_size=args.image_size,
                 shard_episodes=args.shard_episodes, keep_failed=args.keep_failed, workers=args.workers)
    print(f"{run.planned} episodes planned, {run.skipped} already recorded, {run.recorded} run now, "
          f"{run.kept} stored ({run.steps} steps) in {run.wall_time:.1f} s -> {args.out}")
    return 0


# --- label -------------------------------------------------------------------------------------
def parse_mix(text: str, formats: list[str]) -> dict[str, float] | None:
    if text == "none":
        return None
    if text == "uniform":
        return dict.fromkeys(formats, 1.0)
    weights = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        try:
            weights[name.strip()] = float(weight)
        except ValueError:
            raise ValueError(f"--mix: {part!r} is not FORMAT=WEIGHT") from None
    return weights


def run_label(args: argparse.Namespace) -> int:
    quiet_library_bars()
    formats = [name.strip() for name in args.formats.split(",") if name.strip()]
    use_image, use_text = OBSERVES[args.observe]
    config = BuildConfig(history=args.history, use_image=use_image, use_text=use_text, keep_noop=args.keep_noop,
                         seed=args.seed, mixed_levels=args.mixed_levels, verify_budget=args.verify_budget,
                         prompt_style=args.prompt_style, requery_every=args.requery_every or None)
    report = label(args.data, formats, args.out, parse_mix(args.mix, formats), config, args.suite_file, args.workers,
                   args.latent)
    print(f"{report['episodes']} episodes, {report['steps']} steps, labelled in {report['wall_time']:.1f} s")
    verified = report.get("verified_levels")
    if verified:
        print(f"verified levels (mixed format), share of steps per category; {verified['seconds_per_step'] * 1000:.1f} ms "
              f"per step, {verified['wall_time']:.1f} s on {verified['workers']} worker(s):")
        print("\n".join(f"  {line}" for line in shares_table(verified["shares"])))
    for name, counts in report["datasets"].items():
        rejected = ", ".join(f"{rule} {n}" for rule, n in counts["rejected"].items())
        print(f"  {name:14s} {counts['kept']:6d} examples   rejected: {rejected}")
    return 0


# --- stats -------------------------------------------------------------------------------------
def stats(data: str | Path, tokenizer_path: str | None = None) -> dict:
    """For a recording: episodes, steps, successes, actions per category. For a labelled folder: per
    dataset, examples per category and level, and token lengths of the text and the reply."""
    data = Path(data)
    if (data / REPORT).exists():
        count = _token_counter(tokenizer_path)
        report = json.loads((data / REPORT).read_text())
        return {name: _dataset_stats(data / name, count) for name in report["datasets"]}
    return _recording_stats(data)


def _recording_stats(data: Path) -> dict:
    manifest = read_manifest(data)
    steps = load_trajectories(data).select_columns(["category", "action"])
    result = {}
    for category in [*CATEGORIES, "all"]:
        episodes = [e for e in manifest["episodes"] if category in (e["category"], "all")]
        actions = Counter(a for c, a in zip(steps["category"], steps["action"]) if category in (c, "all"))
        result[category] = {"episodes": len(episodes), "successes": sum(e["success"] for e in episodes),
                            "stored_steps": sum(actions.values()), "actions": dict(actions.most_common())}
    return result


def _dataset_stats(path: Path, count) -> dict:
    from datasets import load_from_disk

    dataset = load_from_disk(str(path)).select_columns(["messages", "category", "levels"])
    texts, replies, images = [], [], []
    for raw in dataset["messages"]:
        messages = json.loads(raw)
        items = [item for message in messages for item in message["content"]]
        texts.append("\n".join(item["text"] for item in items if item["type"] == "text"))
        replies.append(messages[-1]["content"][0]["text"])
        images.append(sum(item["type"] == "image" for item in items))
    return {
        "examples": len(dataset),
        "categories": dict(Counter(dataset["category"])),
        "levels": dict(Counter(level for levels in dataset["levels"] for level in levels)),
        "text_tokens": _summary(count(texts)), "reply_tokens": _summary(count(replies)),
        "images": _summary(images),
    }


def _token_counter(tokenizer_path: str | None):
    if tokenizer_path is None:
        return lambda texts: [len(_TOKENS.findall(text)) for text in texts]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    return lambda texts: [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []


def _summary(values: list[int]) -> dict:
    if not values:
        return {"mean": 0, "median": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {"mean": round(statistics.fmean(ordered), 1), "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}


def run_stats(args: argparse.Namespace) -> int:
    print(json.dumps(stats(args.data, args.tokenizer), indent=1))
    return 0
