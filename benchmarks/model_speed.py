"""Model-agent speed, measured side by side in one run with the tiny model.

1. Agent env steps/s in slow mode (one reply per step): the same episodes run through the
   episode loop (bench.episode_loop) with one batched generate call for all waiting envs
   (`slots` = N), against one env at a time (`slots` = 1). The ratio is the gain of batched
   generation.
2. SFT throughput: non-padding tokens/s of cold-start SFT on a synthetic all-in-one-shaped
   dataset (mixed prompts, 1 turn of history).

Run: `python benchmarks/model_speed.py` (a few minutes on 2 cores); writes
benchmarks/results/model_speed.md.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from crossagent.agents.level_agent import LevelAgent  # noqa: E402
from crossagent.agents.model_policy import ModelPolicy  # noqa: E402
from crossagent.bench.episode import Episode, make_env  # noqa: E402
from crossagent.bench.episode_loop import run_episodes  # noqa: E402
from crossagent.models.generation import GenerationSettings  # noqa: E402
from crossagent.models.loading import load_model  # noqa: E402
from crossagent.models.prompts import Turn, build_messages  # noqa: E402
from crossagent.models.samplers import LocalSampler  # noqa: E402
from crossagent.models.tiny_vlm import create_tiny_model  # noqa: E402
from crossagent.tasks.suite import load_suite  # noqa: E402
from crossagent.tasks.task import Task  # noqa: E402
from crossagent.train.sft import SFTSettings, run_sft  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "model_speed.md"
EPISODES = 16
EPISODE_STEPS = 20
SFT_STEPS = 12


def steps_per_second(model_path: str, slots: int) -> tuple[float, float]:
    model, processor = load_model(model_path)
    suite = load_suite()
    episodes = [(replace(task, budget=EPISODE_STEPS), 0) for task in suite.mini[:EPISODES]]
    sampler = LocalSampler(model, processor, GenerationSettings(max_new_tokens=16))

    def make_episode(index: int, task: Task, trial: int) -> Episode:
        agent = LevelAgent(ModelPolicy("mixed", history_length=1), mode="slow")
        return Episode(make_env(agent), agent, task, trial)

    stats = run_episodes(episodes, make_episode, lambda finished: None, slots, sampler)
    return stats.steps_per_second, stats.tokens_per_second


def sft_tokens_per_second(model_path: str, work: Path) -> float:
    rng = np.random.default_rng(0)
    rows = []
    for index in range(64):
        images = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
        messages, images = build_messages("mixed", "Make a wood pickaxe.", [Turn(images[0], None, "Skill: collect wood")],
                                          images[1], history_length=1)
        messages.append({"role": "assistant", "content": [{"type": "text", "text": "Skill: place table"}]})
        rows.append({"messages": json.dumps(messages), "images": images})
    Dataset.from_list(rows).save_to_disk(str(work / "data"))
    result = run_sft(SFTSettings(model=model_path, dataset=str(work / "data"), output_dir=str(work / "sft"),
                                 max_steps=SFT_STEPS, batch_size=8, save_steps=1000, progress=False))
    return result.tokens_per_second


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        model_path = str(create_tiny_model(work / "model"))
        batched, batched_tokens = steps_per_second(model_path, EPISODES)
        single, single_tokens = steps_per_second(model_path, 1)
        sft = sft_tokens_per_second(model_path, work)
    lines = [
        "# Model-agent speed (tiny Qwen2-VL, 1.4 M parameters, CPU, 1 torch thread)",
        "",
        f"{EPISODES} mini-suite episodes x {EPISODE_STEPS} steps, slow mode (a reply every step), "
        f"mixed prompts with 1 turn of history; {os.cpu_count()} CPUs.",
        "",
        "| run | env steps/s | generated tokens/s |",
        "|---|---:|---:|",
        f"| batched: {EPISODES} envs, one generate call per step | {batched:.1f} | {batched_tokens:.1f} |",
        f"| one env at a time | {single:.1f} | {single_tokens:.1f} |",
        f"| ratio (batched / one at a time) | {batched / single:.2f} | {batched_tokens / single_tokens:.2f} |",
        "",
        f"SFT: {sft:.0f} tokens/s (non-padding tokens, batch 8, {SFT_STEPS} steps).",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
