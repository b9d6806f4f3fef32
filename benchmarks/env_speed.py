"""Env speed, measured side by side: stock `crafter.Env` against our `CrafterEnv`.

Steps/s: the same random action sequence in each env; only `step` calls are timed (the
restarts after deaths are not). Stock Crafter renders an image every step; our env renders
only when asked for an image. Resets: stock `reset()` generates the world every time, ours
restores a snapshot of the generated world (after one warm-up reset of that seed).

Run: `python benchmarks/env_speed.py` (under a minute); writes benchmarks/results/env_speed.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import crafter
import numpy as np

# Runnable from a checkout, without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from crossagent.envs.crafter_env import ACTION_NAMES, CrafterEnv  # noqa: E402

IMAGE_SIZE = 64
RESULTS = Path(__file__).parent / "results" / "env_speed.md"


@dataclass(frozen=True)
class SpeedConfig:
    steps: int = 20_000  # timed steps per env
    stock_resets: int = 5  # each ~0.65 s
    snapshot_resets: int = 200
    seed: int = 0


def stock_steps_per_second(actions: np.ndarray, seed: int) -> float:
    fresh = crafter.Env(size=(IMAGE_SIZE, IMAGE_SIZE), seed=seed)
    fresh.reset()
    # After a death, restart from a copy of the first reset: a stock reset (~0.65 s) every
    # ~150 random steps would make this benchmark take minutes, and it is not timed anyway.
    env = copy.deepcopy(fresh)
    elapsed = 0.0
    for action in actions:
        started = time.perf_counter()
        _, _, done, _ = env.step(int(action))
        elapsed += time.perf_counter() - started
        if done:
            env = copy.deepcopy(fresh)
    return len(actions) / elapsed


def our_steps_per_second(actions: np.ndarray, seed: int, observe_image: bool) -> float:
    env = CrafterEnv(image_size=IMAGE_SIZE, observe_image=observe_image, observe_text=False)
    env.reset(seed=seed)
    elapsed = 0.0
    for action in actions:
        started = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(int(action))
        elapsed += time.perf_counter() - started
        if terminated or truncated:
            env.reset(seed=seed)
    return len(actions) / elapsed


def stock_reset_seconds(resets: int, seed: int) -> float:
    env = crafter.Env(size=(IMAGE_SIZE, IMAGE_SIZE), seed=seed)
    started = time.perf_counter()
    for _ in range(resets):
        env.reset()
    return (time.perf_counter() - started) / resets


def snapshot_reset_seconds(resets: int, seed: int) -> float:
    env = CrafterEnv(image_size=IMAGE_SIZE, observe_image=True, observe_text=False)
    env.reset(seed=seed)  # warm-up: generates and snapshots the world
    started = time.perf_counter()
    for _ in range(resets):
        env.reset(seed=seed)
    return (time.perf_counter() - started) / resets


def measure(config: SpeedConfig) -> str:
    actions = np.random.default_rng(config.seed).integers(len(ACTION_NAMES), size=config.steps)
    stock = stock_steps_per_second(actions, config.seed)
    with_image = our_steps_per_second(actions, config.seed, observe_image=True)
    without_image = our_steps_per_second(actions, config.seed, observe_image=False)
    stock_reset = stock_reset_seconds(config.stock_resets, config.seed)
    snapshot_reset = snapshot_reset_seconds(config.snapshot_resets, config.seed)
    lines = [
        "# Env speed: stock crafter.Env vs CrafterEnv",
        "",
        f"{config.steps} random-action steps per env, {IMAGE_SIZE} px images; python {platform.python_version()}, "
        f"crafter {metadata.version('crafter')}, {platform.machine()}, {os.cpu_count()} CPUs, one process.",
        "",
        "| Stepping | steps/s | overhead ratio (stock / this) |",
        "|---|---:|---:|",
        f"| stock crafter.Env (renders every step) | {stock:,.0f} | 1.00 |",
        f"| CrafterEnv, image on, text off | {with_image:,.0f} | {stock / with_image:.2f} |",
        f"| CrafterEnv, image off, text off | {without_image:,.0f} | {stock / without_image:.2f} |",
        "",
        "| Reset | ms per reset | speed-up (stock / this) |",
        "|---|---:|---:|",
        f"| stock crafter.Env.reset() (generates the world) | {1000 * stock_reset:.1f} | 1.0 |",
        f"| CrafterEnv.reset() from a snapshot (warm seed) | {1000 * snapshot_reset:.2f} | "
        f"{stock_reset / snapshot_reset:.0f} |",
        "",
        "An overhead ratio below 1 means our env is faster than stock.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=SpeedConfig.steps)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    table = measure(SpeedConfig(steps=args.steps))
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)


if __name__ == "__main__":
    main()
