"""SFT speed of the previous setting against the new defaults, and batched generation, side by side in one run.

The machine is shared, so only ratios measured in the same run mean anything: every SFT setting
trains for a few steps in turn, round after round, and each setting's time is summed over rounds.

SFT settings (all the demo's tiny model, history 1, batch 8, AdamW steps through the Trainer's own
`training_step`, collation included; data: the expert's steps on training tasks, the all-in-one mix):
- previous: full system prompt, image + text view, every assistant turn labelled (the old collator),
  TRL's SFTTrainer loss (the output layer over every position on a CPU), padding mask, fp32;
- each change on its own and together: the compact prompt, the efficient loss (final reply only,
  labelled positions only, no padding mask: train.sft.ReplyLossTrainer), bf16 autocast, text only.
Examples/s counts training examples; tokens/s counts real (non-padding) tokens processed.

Generation: eval-model's sampling (temperature 0.4, up to 32 new tokens) on prompts of the new default,
16 requests in one batched call vs 16 calls of one, alternating.

Run: `PYTHONPATH=src python benchmarks/sft_speed.py` (~10 minutes on 2 busy cores); writes
benchmarks/results/sft_speed.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import Dataset

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))
from crossagent.data.builders import ALL_IN_ONE_WEIGHTS, BuildConfig, build_dataset  # noqa: E402
from crossagent.data.recording import episodes_of, load_trajectories, read_manifest, record  # noqa: E402
from crossagent.models.generation import GenerationSettings, generate_batch  # noqa: E402
from crossagent.models.loading import load_model  # noqa: E402
from crossagent.models.prompts import OBSERVES  # noqa: E402
from crossagent.models.threads import use_threads  # noqa: E402
from crossagent.models.tiny_vlm import create_tiny_model  # noqa: E402
from crossagent.tasks.splits import train_tasks  # noqa: E402
from crossagent.tasks.suite import load_suite  # noqa: E402
from crossagent.train.sft import IGNORE_INDEX, FinalReplyCollator, ReplyLossTrainer  # noqa: E402
from trl import SFTConfig, SFTTrainer  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "sft_speed.md"
NOTES = """## Notes

- "loss after the run" is the last batch's loss of each setting; the old collator's loss also averages the
  history's replies, so it is comparable only between rows with the same collator.
- Kept (train/sft.py, the demo's defaults): the compact prompt, the final reply as the only target,
  the output layer at labelled positions only, no padding mask, bf16 autocast with eager attention
  (CPU sdpa's bf16 backward is slower than eager's, so bf16 pays only with eager), the text view.
  The efficient loss equals the model's own loss and gradients (tests/train/test_sft.py).
- Not kept: more torch threads (the issue measured 2 threads on the 2 shared cores at 0.14x; default 1
  stays); packing: with the compact prompt padding is ~15 % of the processed tokens, so packing could
  gain at most ~1.17x, and a block-diagonal mask replaces the causal path this run shows to be the
  fast one; it was not implemented.
- History replies get no loss: at evaluation they are the model's own earlier replies (inputs), and as
  targets they are predicted without their observation (past turns drop the text view), each being the
  final reply of its own step's example anyway."""
BATCH = 8
HISTORY = 1


class EveryReplyCollator(FinalReplyCollator):
    """The previous collator: labels on every assistant turn, the history's replies too."""

    def final_reply_labels(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        prefix = self.prefix_ids
        for row, ids in enumerate(input_ids.tolist()):
            for start in (p + len(prefix) for p in range(len(ids)) if ids[p:p + len(prefix)] == prefix):
                end = ids.index(self.end_id, start)
                labels[row, start:end + 1] = input_ids[row, start:end + 1]
        return labels.masked_fill(attention_mask == 0, IGNORE_INDEX)


@dataclass(frozen=True)
class Setting:
    name: str
    prompt_style: str
    observe: str
    efficient: bool  # final reply only, labelled positions only, no padding mask
    bf16: bool = False
    attention: str = "sdpa"


SETTINGS = (
    Setting("previous: full prompt, image+text, old collator and loss, fp32", "full", "both", False),
    Setting("compact prompt (old collator and loss)", "compact", "both", False),
    Setting("efficient loss (full prompt)", "full", "both", True),
    Setting("compact + efficient loss", "compact", "both", True),
    Setting("compact + efficient loss + bf16 (sdpa)", "compact", "both", True, bf16=True),
    Setting("compact + efficient loss + bf16 + eager attention", "compact", "both", True, True, "eager"),
    Setting("compact + efficient loss, text only", "compact", "text", True),
    Setting("new default: compact + efficient loss + bf16 + eager, text only", "compact", "text", True, True, "eager"),
)


def make_trainer(setting: Setting, model_path: str, out: Path):
    model, processor = load_model(model_path)
    model.set_attn_implementation(setting.attention)
    collator = (FinalReplyCollator if setting.efficient else EveryReplyCollator)(processor, 4096)
    config = SFTConfig(output_dir=str(out), per_device_train_batch_size=BATCH, learning_rate=1e-3, report_to=[],
                       remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True}, use_cpu=True,
                       bf16=setting.bf16, max_steps=1000, disable_tqdm=True)
    trainer_class = ReplyLossTrainer if setting.efficient else SFTTrainer
    trainer = trainer_class(model=model, args=config, data_collator=collator, train_dataset=Dataset.from_list([{"messages": ""}]),  # unused: steps are fed here
                            processing_class=processor)
    trainer.create_optimizer_and_scheduler(num_training_steps=1000)
    trainer.model.train()
    return trainer, collator


def train_steps(trainer, collator, examples: list[dict], start: int, steps: int) -> tuple[float, int, int, float]:
    """(seconds, examples, real tokens, last loss) of `steps` optimizer steps from example `start` on."""
    seconds, tokens, loss = 0.0, 0, float("nan")
    for step in range(steps):
        rows = [examples[(start + step * BATCH + i) % len(examples)] for i in range(BATCH)]
        began = time.perf_counter()
        batch = collator(rows)
        items = (batch["labels"][:, 1:] != IGNORE_INDEX).sum()
        loss = trainer.training_step(trainer.model, batch, items).item()
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        trainer.optimizer.zero_grad()
        seconds += time.perf_counter() - began
        tokens += int(batch["attention_mask"].sum())
    return seconds, steps * BATCH, tokens, loss


def shape(collator, examples: list[dict]) -> dict:
    """Per example: real tokens, processed tokens (after padding), labelled tokens."""
    real = processed = labelled = 0
    for start in range(0, 64, BATCH):
        batch = collator(examples[start:start + BATCH])
        real += int(batch["attention_mask"].sum())
        processed += batch["input_ids"].numel()
        labelled += int((batch["labels"] != IGNORE_INDEX).sum())
    return {"real": real / 64, "processed": processed / 64, "labelled": labelled / 64}


def generation_ratio(model_path: str, examples: list[dict], rounds: int) -> dict:
    model, processor = load_model(model_path)
    settings = GenerationSettings(max_new_tokens=32, do_sample=True, temperature=0.4, seed=0)
    requests = []
    for example in examples[:16]:
        messages = json.loads(example["messages"])[:-1]  # the prompt: everything before the final reply
        requests.append((messages, list(example["images"])))
    batched = single = 0.0
    for _ in range(rounds):
        began = time.perf_counter()
        generate_batch(model, processor, requests, settings)
        batched += time.perf_counter() - began
        began = time.perf_counter()
        for request in requests:
            generate_batch(model, processor, [request], settings)
        single += time.perf_counter() - began
    return {"requests": len(requests), "rounds": rounds, "batched_s": batched, "single_s": single,
            "speedup": single / batched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per setting per round")
    parser.add_argument("--generation-rounds", type=int, default=3)
    args = parser.parse_args()
    use_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        model_path = str(create_tiny_model(work / "model"))
        record("expert", train_tasks(load_suite(), 8), 1, work / "recording", workers=1, progress=False)
        episodes = episodes_of(load_trajectories(work / "recording"))
        data = {}
        for setting in SETTINGS:
            key = (setting.prompt_style, setting.observe)
            if key not in data:
                use_image, use_text = OBSERVES[setting.observe]
                dataset, _ = build_dataset(episodes, ALL_IN_ONE_WEIGHTS, BuildConfig(
                    history=HISTORY, use_image=use_image, use_text=use_text, prompt_style=setting.prompt_style),
                    read_manifest(work / "recording")["image_size"])
                data[key] = [dataset[i] for i in range(len(dataset))]  # images decoded, as the Trainer reads them
        trainers = {s.name: make_trainer(s, model_path, work / str(i))
                    for i, s in enumerate(SETTINGS)}
        shapes = {s.name: shape(trainers[s.name][1], data[(s.prompt_style, s.observe)]) for s in SETTINGS}
        totals = {s.name: [0.0, 0, 0, float("nan")] for s in SETTINGS}
        for setting in SETTINGS:  # warm-up: one step each, not timed
            train_steps(*trainers[setting.name], data[(setting.prompt_style, setting.observe)], 0, 1)
        for round_ in range(args.rounds):
            order = SETTINGS if round_ % 2 == 0 else SETTINGS[::-1]
            for setting in order:
                seconds, count, tokens, loss = train_steps(*trainers[setting.name],
                                                           data[(setting.prompt_style, setting.observe)],
                                                           (1 + round_ * args.steps) * BATCH, args.steps)
                total = totals[setting.name]
                total[0] += seconds
                total[1] += count
                total[2] += tokens
                total[3] = loss
            print(f"round {round_ + 1}/{args.rounds} done", flush=True)
        generation = generation_ratio(model_path, data[("compact", "text")], args.generation_rounds)
        generation_both = generation_ratio(model_path, data[("compact", "both")], args.generation_rounds)
    write(args, totals, shapes, generation, generation_both, len(data[("full", "both")]))


def write(args, totals, shapes, generation, generation_both, examples: int) -> None:
    base = totals[SETTINGS[0].name]
    base_rate = base[1] / base[0]
    lines = ["# SFT speed: previous setting vs the new defaults (side by side, one run)", "",
             f"`PYTHONPATH=src python benchmarks/sft_speed.py --rounds {args.rounds} --steps {args.steps}`: "
             f"the demo's tiny model, {examples} examples of the all-in-one mix (expert steps of 24 training tasks), "
             f"history {HISTORY}, batch {BATCH}, 1 torch thread; {args.rounds} rounds of {args.steps} optimizer steps "
             "per setting, alternating order. The machine is 2 shared cores with other jobs running: only the "
             "ratios of this run mean anything, the absolute rates move with the load.", "",
             "| setting | examples/s | real tokens/s | vs previous (examples/s) | tokens/example (real / processed / "
             "labelled) | loss after the run |", "|---|---|---|---|---|---|"]
    for setting in SETTINGS:
        seconds, count, tokens, loss = totals[setting.name]
        s = shapes[setting.name]
        lines.append(f"| {setting.name} | {count / seconds:.2f} | {tokens / seconds:.0f} | "
                     f"{count / seconds / base_rate:.2f}x | {s['real']:.0f} / {s['processed']:.0f} / "
                     f"{s['labelled']:.1f} | {loss:.3f} |")
    lines += ["", "## Generation with the compact prompt: one batched call vs one call per request", "",
              "eval-model's sampling (temperature 0.4, up to 32 new tokens, untrained weights), the same requests, "
              "alternating.", "", "| prompt | requests | rounds | batched (s) | one at a time (s) | speed-up |",
              "|---|---|---|---|---|---|"]
    for name, g in (("compact, text only", generation), ("compact, image + text", generation_both)):
        lines.append(f"| {name} | {g['requests']} | {g['rounds']} | {g['batched_s']:.1f} | {g['single_s']:.1f} | "
                     f"{g['speedup']:.1f}x |")
    lines += ["", NOTES]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
