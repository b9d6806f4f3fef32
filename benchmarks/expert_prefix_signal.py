"""How many GRPO groups carry a signal with expert prefixes, side by side in one run.

The same groups (training tasks of the kinds a cold start never solves, the same trials, the same replies'
seeds) are rolled out by one SFT model without a prefix and with the hand-over drawn from [earliest, 1) of the
expert's steps, for several `earliest` (train/rollouts.py; every group gets the same uniform draw, scaled into
each range). Per setting: the groups whose successes differ (the ones GRPO learns from), the successes, and
the model calls per episode. The replies are sampled as GRPO's rollouts are (temperature 1, constrained).

Run: `python benchmarks/expert_prefix_signal.py --model RUN/model/mix/final` with the folder of a
`crossagent compare` run (its all-in-one SFT model, text observations, compact prompts, no history); writes
benchmarks/results/expert_prefix_signal.md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from crossagent.models.loading import load_model
from crossagent.models.samplers import LocalSampler
from crossagent.tasks.splits import train_tasks
from crossagent.tasks.suite import load_suite
from crossagent.tasks.task import task_kind
from crossagent.train.grpo import GRPOConfig
from crossagent.train.rollouts import collect_rollouts, draw_expert_prefixes, group_specs

RESULTS = Path(__file__).parent / "results" / "expert_prefix_signal.md"
# The held-out kinds that the cold starts of docs/grpo.md never solved (or, for the last, solved once in 430
# episodes), before and after GRPO.
HARD_KINDS = ("craft.make_iron_pickaxe.kit", "craft.make_iron_sword.kit", "craft.make_iron_pickaxe.from_scratch",
              "craft.make_iron_sword.from_scratch", "craft.stone_tools.from_scratch",
              "craft.make_stone_sword.from_scratch", "embodied.place_stone.kit", "embodied.sleep.exhausted",
              "embodied.sleep.tired", "embodied.reach_diamond.far")
EARLIEST = (None, 0.0, 0.5, 0.8)  # None: no prefix
FIRST_TRIAL, GROUP_SIZE = 100, 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an SFT checkpoint trained on text observations")
    parser.add_argument("--per-kind", type=int, default=2, help="training tasks of each kind")
    parser.add_argument("--max-episode-steps", type=int, default=150)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the commands default (models/threads.py)

    training = train_tasks(load_suite(), None)
    tasks = [task for kind in HARD_KINDS for task in [t for t in training if task_kind(t.id) == kind][:args.per_kind]]
    config = GRPOConfig(model=args.model, output_dir="", max_episode_steps=args.max_episode_steps, history_length=0,
                        use_image=False, use_text=True, prompt_style="compact", max_new_tokens=32)
    model, processor = load_model(args.model)
    sampler = LocalSampler(model, processor, config.generation_settings(config.temperature), config.constrained)
    rows, load = [], os.getloadavg()[0]
    for earliest in EARLIEST:
        # The same generator seed for every range: each group's uniform draw is the same, scaled into the range.
        prefixes = ([None] * len(tasks) if earliest is None
                    else draw_expert_prefixes(len(tasks), 1.0, earliest, np.random.default_rng(0)))
        started = time.perf_counter()
        batch = collect_rollouts(group_specs(tasks, GROUP_SIZE, FIRST_TRIAL, prefixes), sampler,
                                 config.rollout_settings(), seed=0)
        successes = [sum(e.result.success for e in batch.episodes[g * GROUP_SIZE:(g + 1) * GROUP_SIZE])
                     for g in range(len(tasks))]
        label = "no prefix" if earliest is None else f"hand-over in [{earliest}, 1)"
        rows.append((label, sum(0 < s < GROUP_SIZE for s in successes), sum(s == GROUP_SIZE for s in successes),
                     sum(successes), len(batch.episodes),
                     np.mean([e.result.extra["calls"] for e in batch.episodes]), time.perf_counter() - started))
        print(rows[-1], flush=True)

    lines = [f"# Expert prefixes: groups with a signal (`python benchmarks/expert_prefix_signal.py --model "
             f"{args.model}`)", "",
             f"{len(tasks)} groups of {GROUP_SIZE} ({args.per_kind} training tasks of each of {len(HARD_KINDS)} kinds: "
             f"{', '.join(HARD_KINDS)}), trials from {FIRST_TRIAL}, at most {args.max_episode_steps} steps, "
             f"temperature 1, constrained replies. {os.cpu_count()} CPU cores, 1 torch thread; 1-minute load average "
             f"{load:.1f} at the start.", "",
             "| setting | groups with a signal | groups all solved | successes | model calls / episode | seconds |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {label} | {mixed} of {len(tasks)} | {solved} | {wins} of {episodes} | {calls:.1f} | {seconds:.0f} |"
              for label, mixed, solved, wins, episodes, calls, seconds in rows]
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
