"""GRPO iteration speed, old against new, side by side in one run with the tiny model.

"old" is the trainer at commit eabfaf7 (before turns were encoded once per iteration and micro-batches
shared their prompt prefix), exported with `git archive` into a scratch folder; "new" is this
checkout's src/, training on every turn; "new K=8" is the same code training on 8 random turns of each
longer episode (`update_turns_per_episode`). Each run is a subprocess running train.grpo.train with that
src/ first on PYTHONPATH: 2 iterations of 4 training tasks x group 4, at most 40 steps per episode, from
the same tiny model (random weights, built once), the same seed and the same tasks; the runs alternate
old, new, new K=8, twice, so that a change in the machine's load hits each. Per iteration, from
grpo_log.csv: rollout env steps/s, generated tokens/s, rollout and update seconds, update / rollout, and
the loss terms. The first iteration's rollouts are the same in every run (same env steps); its loss is
not: since eabfaf7 every episode weighs the same in the loss (`turn_weighting`, docs/grpo.md) where the
old code weighed every turn, and K=8 trains on fewer turns. From the second iteration on, the rollouts
differ too, as the first update did.

Run: `python benchmarks/grpo_speed.py` (about 15 minutes on 2 idle cores); writes
benchmarks/results/grpo_speed.md.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "grpo_speed.md"
OLD_COMMIT = "eabfaf7"
CODES = ("old", "new", "new K=8")
RUNS = CODES * 2
SAMPLED_TURNS = 8  # update_turns_per_episode of "new K=8"
TASKS, GROUP, MAX_STEPS, ITERATIONS, MAX_NEW_TOKENS = 4, 4, 40, 2, 24
MINIBATCH, ACCUMULATION = 16, 2
COLUMNS = ("iteration", "turns", "env_steps", "env_steps_per_second", "generated_tokens_per_second",
           "rollout_seconds", "update_seconds", "loss", "kl", "entropy")


def measure(model_path: str, out: str, update_turns: str) -> None:
    """One run, in this process, with whichever crossagent PYTHONPATH gives; prints the log's rows as JSON."""
    import torch

    from crossagent.train.grpo import GRPOConfig, train
    from crossagent.train.grpo_log import LOG_CSV

    torch.set_num_threads(1)  # as the commands default (models/threads.py)
    config = GRPOConfig(model=model_path, output_dir=out, tasks_per_category=10, tasks_per_batch=TASKS,
                        group_size=GROUP, max_episode_steps=MAX_STEPS, history_length=1,
                        max_new_tokens=MAX_NEW_TOKENS, updates=ITERATIONS, checkpoint_every=ITERATIONS,
                        learning_rate=1e-4, minibatch_size=MINIBATCH, gradient_accumulation_steps=ACCUMULATION,
                        **({"update_turns_per_episode": int(update_turns)} if int(update_turns) else {}))
    train(config)
    with (Path(out) / LOG_CSV).open() as file:
        rows = [{name: float(row[name]) for name in COLUMNS} for row in csv.DictReader(file)]
    print(json.dumps(rows))


def run(src: Path, model_path: Path, out: Path, update_turns: int) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, __file__, "--measure", str(model_path), str(out), str(update_turns)],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"the run with {src} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[tuple[str, list[dict]]]) -> list[str]:
    lines = ["| run | code | iteration | turns | env steps | rollout env steps/s | generated tokens/s | rollout s "
             "| update s | update / rollout | loss | kl |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for number, (code, rows) in enumerate(results, 1):
        lines += [f"| {number} | {code} | {row['iteration']:.0f} | {row['turns']:.0f} | {row['env_steps']:.0f} | "
                  f"{row['env_steps_per_second']:.1f} | {row['generated_tokens_per_second']:.0f} | "
                  f"{row['rollout_seconds']:.1f} | {row['update_seconds']:.1f} | "
                  f"{row['update_seconds'] / row['rollout_seconds']:.2f} | {row['loss']:.5f} | {row['kl']:.6f} |"
                  for row in rows]
    return lines


def summary(results: list[tuple[str, list[dict]]]) -> list[str]:
    def average(code: str, name: str) -> float:
        return mean(row[name] for run_code, rows in results if run_code == code for row in rows)

    def ratio(code: str) -> float:
        return average(code, "update_seconds") / average(code, "rollout_seconds")

    names = (("rollout env steps/s", "env_steps_per_second", ".1f"),
             ("generated tokens/s", "generated_tokens_per_second", ".0f"),
             ("rollout s", "rollout_seconds", ".1f"), ("update s", "update_seconds", ".1f"))
    lines = [f"| per iteration (mean of runs) | {' | '.join(CODES)} | new / old | new K=8 / old |",
             "|---|" + "---:|" * (len(CODES) + 2)]
    for label, name, spec in names:
        values = [average(code, name) for code in CODES]
        lines.append(f"| {label} | {' | '.join(f'{value:{spec}}' for value in values)} | "
                     f"{values[1] / values[0]:.2f} | {values[2] / values[0]:.2f} |")
    ratios = [ratio(code) for code in CODES]
    lines.append(f"| update s / rollout s | {' | '.join(f'{value:.2f}' for value in ratios)} | "
                 f"{ratios[1] / ratios[0]:.2f} | {ratios[2] / ratios[0]:.2f} |")
    return lines


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from crossagent.models.tiny_vlm import create_tiny_model

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        old_src = work / "old"
        old_src.mkdir()
        archive = subprocess.run(["git", "archive", OLD_COMMIT, "src"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old_src)], input=archive.stdout, check=True)
        model_path = create_tiny_model(work / "model")
        sources = {"old": old_src / "src", "new": ROOT / "src", "new K=8": ROOT / "src"}
        results, started, load = [], time.perf_counter(), os.getloadavg()[0]
        for number, code in enumerate(RUNS):
            turns = SAMPLED_TURNS if code == "new K=8" else 0
            results.append((code, run(sources[code], model_path, work / f"run{number}", turns)))
            print(f"run {number + 1} ({code}) done", flush=True)
        minutes, load = (time.perf_counter() - started) / 60, (load + os.getloadavg()[0]) / 2
    lines = [
        "# GRPO iteration speed, old against new (tiny Qwen2-VL, CPU, 1 torch thread)",
        "",
        f"`python benchmarks/grpo_speed.py`: old = the trainer at commit {OLD_COMMIT}, new = this checkout, "
        f"new K={SAMPLED_TURNS} = this checkout updating on {SAMPLED_TURNS} random turns of each longer episode; "
        f"alternating runs on the same tiny model (random weights), seed and tasks. Each run: {ITERATIONS} "
        f"iterations of {TASKS} training tasks x group {GROUP}, at most {MAX_STEPS} steps per episode, dynamic "
        f"mode, constrained replies of at most {MAX_NEW_TOKENS} tokens, mixed format with the full system prompt "
        f"and 1 turn of history; the update: the old and reference log-prob passes and 1 epoch of micro-batches "
        f"of {MINIBATCH} turns, {ACCUMULATION} per optimizer step. {os.cpu_count()} CPU cores, shared with other "
        f"jobs (1-minute load average {load:.1f} at the start and end, on average); the {len(RUNS)} runs took "
        f"{minutes:.0f} "
        "minutes.",
        "",
        *summary(results),
        "",
        "## Every iteration",
        "",
        *table(results),
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        measure(*sys.argv[2:5])
    else:
        main()
