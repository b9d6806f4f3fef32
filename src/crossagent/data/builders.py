"""SFT datasets from labelled trajectories, kept by CrossAgent's rejection filter.

One example per kept step: the chat messages (system prompt of the output format, the task, the
last H turns of the same episode with their replies in the same format, the current observation:
image, text view or both, as the model will read it) and the target reply. Formats (models/prompts.OUTPUT_FORMATS):
- `raw` (D_a) and `motion`, `grounding`, `skill` (D_A): that level's line only;
- `motion_coa`, `grounding_coa` (D_CoA): the upper line, then the `Action:` line;
- `mixed`: per step, the chain that ends at the step's verified level (data.level_verification: the
  most abstract level whose executor reaches the expert's next subgoal), with the level above it as
  the thought (`VERIFIED_CHAINS`); or, with `mixed_levels="random"`, a chain drawn per step from
  `BuildConfig.mixed_chains`;
- `latent` (opt-in, models/prompts.LEARNED_FORMATS): the code of the chunk of actions that starts at the
  step, as the latent codebook's encoder labels it (data.labelling.latent_labels; `label(latent=...)`).
The all-in-one mix draws one format per step with configurable weights.

History is what the policy remembers at evaluation: its previous questions, not the previous steps. A
reply that ends at an upper level runs its executor for up to `requery_every` steps (fast and dynamic
modes) before the next question; one that ends with `Action:` is asked every step (`asked_steps`). An
example's history is the replies of the last H steps asked before it. Every step stays an example: the
policy is also asked off that schedule (after an executor fails at once), and keeping only the scheduled
steps measured worse (docs/data.md).

Rejection filter (minecraft-formats.md §10), first broken rule wins:
action_lines (not exactly one `Action:` line where the chain has one), upper_lines (an upper level
twice), unparseable (a line that does not parse), action_mismatch (the decoded action, from the
`Action:` line or else a `Motion:` line, is not the recorded one), noop (a no-op step, kept only at
the rate `keep_noop`).
"""

from __future__ import annotations

import bisect
import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import PIL.Image
from datasets import Dataset, Features, Image, List, Value

from crossagent.actions.chain import format_reply, parse_reply
from crossagent.actions.levels import UPPER_LEVELS
from crossagent.agents.level_agent import REQUERY_EVERY
from crossagent.data.labelling import is_interaction, label_episode, latent_labels
from crossagent.data.level_verification import DEFAULT_BUDGET, verify_levels
from crossagent.data.recording import StepRecord, episodes_of, load_trajectories, read_manifest
from crossagent.folder_lock import writes_folder
from crossagent.models.prompts import (DEFAULT_HISTORY, KNOWN_FORMATS, LEARNED_FORMATS, LEVELS_OF_FORMAT,
                                      OUTPUT_FORMATS, Turn, build_messages)

MIXED_CHAINS: tuple[tuple[str, ...], ...] = (
    ("skill",), ("grounding",), ("motion",), ("raw",),
    ("skill", "raw"), ("grounding", "raw"), ("motion", "raw"), ("skill", "grounding", "motion", "raw"),
)
# The mixed format's chain per verified level: the level itself, after the level above it as the thought
# (what the step is for), so every reply says why and runs what a good agent would hand the step to.
# A skill needs no thought; a raw step's thought is its grounding target (a one-step motion would only
# repeat the action).
VERIFIED_CHAINS: dict[str, tuple[str, ...]] = {
    "skill": ("skill",), "grounding": ("skill", "grounding"), "motion": ("grounding", "motion"),
    "raw": ("grounding", "raw"),
}
MIXED_LEVELS = ("verified", "random")
# The all-in-one mix: every output format, the cross-level one (evaluated in dynamic mode) three times as often.
REPORT = "report.json"  # what `label` built, in its output folder
MIX = "mix"  # the all-in-one dataset's folder
ALL_IN_ONE_WEIGHTS = {name: 3.0 if name == "mixed" else 1.0 for name in OUTPUT_FORMATS}
REJECTION_RULES = ("action_lines", "upper_lines", "unparseable", "action_mismatch", "noop")
FEATURES = Features({
    "messages": Value("string"), "images": List(Image()), "format": Value("string"), "levels": List(Value("string")),
    "task_id": Value("string"), "trial": Value("int32"), "step": Value("int32"), "category": Value("string"),
    "action": Value("string"),
})
Episode = Sequence[StepRecord]
Key = tuple[str, int]


@dataclass(frozen=True)
class BuildConfig:
    history: int = DEFAULT_HISTORY  # past turns of the episode shown before the current image
    use_image: bool = True  # the observation the model reads: its image, its text view, or both
    use_text: bool = False
    prompt_style: str = "full"  # models.prompts.PROMPT_STYLES: the full system prompt, or compact for small models
    keep_noop: float = 0.0  # share of no-op steps kept (CrossAgent keeps none)
    seed: int = 0  # draws (no-ops kept, mixed chains, mix formats) depend on it and on the step only
    mixed_chains: tuple[tuple[str, ...], ...] = MIXED_CHAINS  # drawn from when mixed_levels is "random"
    mixed_levels: str = "verified"  # the mixed format's chain per step: "verified" (VERIFIED_CHAINS) or "random"
    verify_budget: int = DEFAULT_BUDGET  # primitive steps an executor gets to reach its subgoal when verifying
    requery_every: int | None = REQUERY_EVERY  # as the evaluation's (the history's questions); None: every step

    def __post_init__(self) -> None:
        if self.mixed_levels not in MIXED_LEVELS:
            raise ValueError(f"mixed_levels {self.mixed_levels!r} is not one of {', '.join(MIXED_LEVELS)}")
        if self.requery_every is not None and self.requery_every < 1:
            raise ValueError(f"requery_every {self.requery_every} must be at least 1 (or None: every step)")


@dataclass
class FilterReport:
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECTION_RULES, 0))

    def to_dict(self) -> dict:
        return {"kept": self.kept, "rejected": dict(self.rejected)}

    def add(self, other: FilterReport) -> None:
        self.kept += other.kept
        for rule, count in other.rejected.items():
            self.rejected[rule] += count


def rejection(reply: str, chain: Sequence[str], recorded_action: str) -> str | None:
    """The first structural filter rule `reply` breaks (no-ops are sampled apart), or None."""
    parsed = parse_reply(reply)
    if "raw" in chain and parsed.line_counts.get("raw", 0) != 1:
        return "action_lines"
    if any(parsed.line_counts.get(level, 0) > 1 for level in UPPER_LEVELS):
        return "upper_lines"
    if parsed.errors or not parsed.levels:
        return "unparseable"
    decoded = parsed.action("raw").name if "raw" in parsed.actions else (
        parsed.action("motion").action if parsed.executed_level == "motion" else None)
    if decoded is not None and decoded != recorded_action:
        return "action_mismatch"
    return None


def chain_of(output_format: str, step: StepRecord, config: BuildConfig, level: str | None = None) -> tuple[str, ...]:
    """The levels a reply holds; for `mixed` the verified `level`'s chain, or drawn per step (so a step's
    history reply never changes)."""
    if output_format != "mixed":
        return LEVELS_OF_FORMAT[output_format]
    if config.mixed_levels == "random":
        return _rng(config, "chain", step).choice(config.mixed_chains)
    if level is None:
        raise ValueError("the mixed format's verified chains need each step's verified level "
                         "(data.level_verification.verify_levels), or mixed_levels='random'")
    return VERIFIED_CHAINS[level]


def build_examples(episodes: Sequence[Episode], formats: Mapping[str, float], config: BuildConfig,
                   image_size: int, levels: Mapping[Key, Sequence[str]] | None = None,
                   latent: Mapping[Key, Sequence[object]] | None = None) -> tuple[list[dict], FilterReport]:
    """Examples of the kept steps; each step's format is drawn with the weights in `formats`. `levels`:
    the verified level of every step by episode key, for the mixed format's verified chains; `latent`: the
    latent label (actions.latent.Latent) of every step by episode key, for the latent format."""
    unknown = sorted(set(formats) - set(KNOWN_FORMATS))
    if unknown:
        raise ValueError(f"unknown output format(s) {', '.join(unknown)} (known: {', '.join(KNOWN_FORMATS)})")
    if latent is None and set(formats) & set(LEARNED_FORMATS):
        raise ValueError("the latent format needs every step's code: label with the latent codebook's checkpoint")
    names, weights = list(formats), list(formats.values())
    report = FilterReport()
    examples = []
    for steps in episodes:
        labels = label_episode(steps, image_size)
        if latent is not None and steps:
            labels = [{**label, "latent": code} for label, code in zip(labels, latent[steps[0].key])]
        verified = levels.get(steps[0].key) if levels and steps else None
        level_of = (lambda s: verified[s]) if verified is not None else (lambda s: None)  # noqa: E731
        asked_of: dict[str, list[int]] = {}  # per format, the steps the policy is asked at, in order
        for t, step in enumerate(steps):
            output_format = names[0] if len(names) == 1 else _rng(config, "format", step).choices(names, weights)[0]
            chain = chain_of(output_format, step, config, level_of(t))
            reply = _reply(output_format, labels[t], step, config, level_of(t))
            rule = rejection(reply, chain, step.action)
            if rule is None and step.action == "noop" and _rng(config, "noop", step).random() >= config.keep_noop:
                rule = "noop"
            if rule is not None:
                report.rejected[rule] += 1
                continue
            history = []
            if config.history:
                if output_format not in asked_of:
                    chains = [chain_of(output_format, s, config, level_of(i)) for i, s in enumerate(steps)]
                    asked = asked_steps(step_replies(steps, labels, chains), config.requery_every)
                    asked_of[output_format] = [i for i, is_asked in enumerate(asked) if is_asked]
                asked = asked_of[output_format]
                position = bisect.bisect_left(asked, t)  # asked[:position]: the questions before this step
                before = asked[max(0, position - config.history):position]
                history = [Turn(steps[s].image if config.use_image else None, None,
                                _reply(output_format, labels[s], steps[s], config, level_of(s))) for s in before]
            image = step.image if config.use_image else None
            messages, images = build_messages(output_format, step.instruction, history, image,
                                              step.text if config.use_text else None, config.history,
                                              config.prompt_style)
            messages.append({"role": "assistant", "content": [{"type": "text", "text": reply}]})
            examples.append({"messages": json.dumps(messages), "images": images, "format": output_format,
                             "levels": list(chain), "task_id": step.task_id,
                             "trial": step.trial, "step": step.step, "category": step.category,
                             "action": step.action})
            report.kept += 1
    return examples, report


class StepReply(NamedTuple):
    """What a step's reply executes: the level it ends with, that level's action, and whether the
    action's executor is done at this step (the skill's event, the grounding's interaction, a motion's
    last repeat, every raw action)."""

    level: str
    action: object
    ends: bool


def step_replies(steps: Episode, labels: Sequence[dict[str, object]], chains: Sequence[Sequence[str]]
                 ) -> list[StepReply]:
    return [StepReply(chain[-1], label[chain[-1]], _ends_at(step, chain[-1], label[chain[-1]]))
            for step, label, chain in zip(steps, labels, chains)]


def _ends_at(step: StepRecord, level: str, action) -> bool:
    if level == "skill":
        return bool(step.events)
    if level == "grounding":
        return is_interaction(step)
    if level == "motion":
        return action.count == 1
    return level != "latent"  # a chunk's end is its decoder's to say: the re-query bounds it


def asked_steps(replies: Sequence[StepReply], requery_every: int | None) -> list[bool]:
    """Per step, whether the policy is asked there: at the first step, after the executor of the last
    asked reply is done, when it has run `requery_every` steps, or when the step's reply is not that
    executor's work any more; `Action:` replies every step; with `requery_every` None, every step."""
    asked, start = [], 0
    for t, reply in enumerate(replies):
        ask = (requery_every is None or t == 0 or replies[t - 1].ends or t - start >= requery_every
               or not _goes_on(replies[start], reply, t - start))
        asked.append(ask)
        if ask:
            start = t
    return asked


def _goes_on(asked: StepReply, now: StepReply, elapsed: int) -> bool:
    """Whether `now`, `elapsed` steps after the asked reply, is still its executor at work: a motion counts
    down its repeats, a grounding keeps its verb and target (the target's point moves as the player
    walks), a skill keeps its sentence."""
    if now.level != asked.level:
        return False
    if now.level == "motion":
        return now.action.action == asked.action.action and now.action.count == asked.action.count - elapsed
    if now.level == "grounding":
        return (now.action.verb, now.action.label) == (asked.action.verb, asked.action.label)
    if now.level == "latent":  # each step starts a chunk of its own: the asked chunk runs until the re-query
        return True
    return now.action == asked.action


def build_dataset(episodes: Sequence[Episode], formats: Mapping[str, float], config: BuildConfig,
                  image_size: int, out: str | Path | None = None, levels: Mapping[Key, Sequence[str]] | None = None,
                  latent: Mapping[Key, Sequence[object]] | None = None) -> tuple[Dataset, FilterReport]:
    """The examples as a `datasets.Dataset` (saved to `out` when given)."""
    examples, report = build_examples(episodes, formats, config, image_size, levels, latent)
    # `datasets` turns arrays nested in a list into int64 lists before encoding; PIL images stay as they are.
    for example in examples:
        example["images"] = [PIL.Image.fromarray(i) if isinstance(i, np.ndarray) else i for i in example["images"]]
    # from_list cannot build an empty data set with features (datasets finds no columns): from_dict can.
    dataset = (Dataset.from_list(examples, features=FEATURES) if examples
               else Dataset.from_dict({name: [] for name in FEATURES}, features=FEATURES))
    if out is not None:
        dataset.save_to_disk(str(out))
    return dataset, report


def _reply(output_format: str, labels: dict[str, object], step: StepRecord, config: BuildConfig,
           level: str | None = None) -> str:
    return format_reply({name: labels[name] for name in chain_of(output_format, step, config, level)})


def _rng(config: BuildConfig, purpose: str, step: StepRecord) -> random.Random:
    # A string seed is hashed with SHA-512, so draws are the same in every process and run.
    return random.Random(f"{config.seed}/{purpose}/{step.task_id}/{step.trial}/{step.step}")


@writes_folder(lambda call: call["out"])
def label(data: str | Path, formats: list[str], out: str | Path, mix: dict[str, float] | None,
          config: BuildConfig, suite: str | Path | None = None, workers: int = 1,
          latent: str | Path | None = None) -> dict:
    """One dataset per format under `out/FORMAT` (and the mix under `out/mix`); returns the report. The
    mixed format's verified levels replay the recording with the tasks of `suite` (default: the packaged
    one), in `workers` processes. `latent`: the latent codebook's checkpoint, which labels the latent format."""
    started = time.perf_counter()
    image_size = read_manifest(data)["image_size"]
    episodes = episodes_of(load_trajectories(data))
    out = Path(out)
    jobs = {name: {name: 1.0} for name in formats}
    if mix:
        jobs[MIX] = mix
    report = {"data": str(data), "episodes": len(episodes), "steps": sum(len(e) for e in episodes),
              "config": {"history": config.history, "use_image": config.use_image, "use_text": config.use_text,
                         "prompt_style": config.prompt_style,
                         "keep_noop": config.keep_noop, "seed": config.seed, "mix": mix,
                         "mixed_levels": config.mixed_levels, "verify_budget": config.verify_budget},
              "datasets": {}}
    if latent is not None:
        report["config"]["latent"] = str(latent)
    codes = latent_codes(episodes, latent) if latent is not None else None
    levels = None
    if config.mixed_levels == "verified" and any("mixed" in weights for weights in jobs.values()):
        levels, report["verified_levels"] = verify_levels(episodes, image_size, config.verify_budget, suite, workers)
    for name, weights in jobs.items():
        _, filtered = build_dataset(episodes, weights, config, image_size, out / name, levels, codes)
        report["datasets"][name] = filtered.to_dict()
    report["wall_time"] = round(time.perf_counter() - started, 2)
    (out / REPORT).write_text(json.dumps(report, indent=1) + "\n")
    return report


def latent_codes(episodes: Sequence[Episode], checkpoint: str | Path) -> dict[Key, list]:
    """Every step's latent label by episode key, from the codebook in `checkpoint`."""
    from crossagent.executors.latent_model import load_latent

    model = load_latent(checkpoint)
    return {steps[0].key: latent_labels(steps, model) for steps in episodes if steps}
