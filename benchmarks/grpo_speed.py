"""GRPO rollout speed, measured side by side in one run with the tiny model.

1. A real GRPO run (train.grpo.train, 2 iterations of 4 tasks x group 4, at most 40 steps per
   episode): per iteration, rollout env steps/s and generated tokens/s (as logged in
   grpo_log.csv), and the rollout's and the update's seconds.
2. The same rollout batch collected two ways: all 16 episodes side by side (one batched sampler
   call per round, as GRPO does) against one episode at a time. The ratio is the gain of
   batching the group's rollouts.

Run: `python benchmarks/grpo_speed.py` (a few minutes on 2 cores); writes
benchmarks/results/grpo_speed.md.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from crossagent.models.generation import GenerationSettings  # noqa: E402
from crossagent.models.loading import load_model  # noqa: E402
from crossagent.models.samplers import LocalSampler  # noqa: E402
from crossagent.models.tiny_vlm import create_tiny_model  # noqa: E402
from crossagent.tasks.splits import train_tasks  # noqa: E402
from crossagent.tasks.suite import load_suite  # noqa: E402
from crossagent.train.grpo import GRPOConfig, train  # noqa: E402
from crossagent.train.grpo_log import LOG_CSV  # noqa: E402
from crossagent.train.rollouts import RolloutBatch, RolloutSettings, collect_rollouts, group_specs  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "grpo_speed.md"
TASKS, GROUP, MAX_STEPS, ITERATIONS = 4, 4, 40, 2


def grpo_iterations(model_path: str, out: Path) -> list[dict]:
    config = GRPOConfig(model=model_path, output_dir=str(out), tasks_per_category=10, tasks_per_batch=TASKS,
                        group_size=GROUP, max_episode_steps=MAX_STEPS, history_length=1, max_new_tokens=24,
                        updates=ITERATIONS, checkpoint_every=ITERATIONS, learning_rate=1e-4, minibatch_size=16,
                        gradient_accumulation_steps=2)
    train(config)
    with (out / LOG_CSV).open() as file:
        return list(csv.DictReader(file))


def rollout_ways(model_path: str) -> tuple[RolloutBatch, list[RolloutBatch]]:
    model, processor = load_model(model_path)
    sampler = LocalSampler(model, processor, GenerationSettings(max_new_tokens=24, do_sample=True, top_k=0))
    settings = RolloutSettings(max_episode_steps=MAX_STEPS, history_length=1)
    specs = group_specs(list(train_tasks(load_suite(), 10)[:TASKS]), GROUP, first_trial=0)
    together = collect_rollouts(specs, sampler, settings, seed=0)
    alone = [collect_rollouts([spec], sampler, settings, seed=index) for index, spec in enumerate(specs)]
    return together, alone


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        model_path = str(create_tiny_model(work / "model"))
        log = grpo_iterations(model_path, work / "grpo")
        together, alone = rollout_ways(model_path)
    alone_steps = sum(b.stats.env_steps for b in alone)
    alone_seconds = sum(b.stats.seconds for b in alone)
    alone_tokens = sum(b.stats.generated_tokens for b in alone)
    batched_rate, alone_rate = together.stats.steps_per_second, alone_steps / alone_seconds
    batched_tokens, alone_token_rate = together.stats.tokens_per_second, alone_tokens / alone_seconds
    lines = [
        "# GRPO rollout speed (tiny Qwen2-VL, 1.4 M parameters, CPU, 1 torch thread)",
        "",
        f"{TASKS} training tasks x group {GROUP}, at most {MAX_STEPS} steps per episode, dynamic mode, "
        f"mixed prompts with 1 turn of history, untrained weights; {os.cpu_count()} CPUs.",
        "",
        "## GRPO iterations (train.grpo.train)",
        "",
        "| iteration | env steps | rollout env steps/s | generated tokens/s | rollout s | update s |",
        "|---:|---:|---:|---:|---:|---:|",
        *(f"| {row['iteration']} | {row['env_steps']} | {float(row['env_steps_per_second']):.1f} | "
          f"{float(row['generated_tokens_per_second']):.0f} | {float(row['rollout_seconds']):.1f} | "
          f"{float(row['update_seconds']):.1f} |" for row in log),
        "",
        "## One rollout batch, batched against one episode at a time",
        "",
        "| run | env steps | env steps/s | generated tokens/s (wall) |",
        "|---|---:|---:|---:|",
        f"| {len(alone)} episodes side by side | {together.stats.env_steps} | {batched_rate:.1f} | {batched_tokens:.0f} |",
        f"| one episode at a time | {alone_steps} | {alone_rate:.1f} | {alone_token_rate:.0f} |",
        f"| ratio (side by side / one at a time) | | {batched_rate / alone_rate:.2f} | "
        f"{batched_tokens / alone_token_rate:.2f} |",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
