"""The default `--threads` of serve and eval-model, measured side by side in one run.

For each torch thread count, in fresh processes (thread counts are per process):
1. eval-model's loop: mini-suite episodes side by side (bench.episode_loop, one batched generate
   per round, slow mode), env steps/s;
2. serve: rounds of concurrent valid requests to `crossagent serve --threads N`, requests/s and
   p95 latency.
"Torch's default" is what torch picks without `--threads` (one per core).

Run: `python benchmarks/thread_speed.py` (a few minutes on 2 cores); writes
benchmarks/results/thread_speed.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import torch

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))
from serve_abuse import free_port, start_server, valid_body  # noqa: E402

from crossagent.agents.level_agent import LevelAgent  # noqa: E402
from crossagent.agents.model_policy import ModelPolicy  # noqa: E402
from crossagent.bench.episode import Episode, make_env  # noqa: E402
from crossagent.bench.episode_loop import run_episodes  # noqa: E402
from crossagent.models.generation import GenerationSettings  # noqa: E402
from crossagent.models.loading import load_model  # noqa: E402
from crossagent.models.samplers import LocalSampler  # noqa: E402
from crossagent.models.threads import use_threads  # noqa: E402
from crossagent.models.tiny_vlm import create_tiny_model  # noqa: E402
from crossagent.tasks.suite import load_suite  # noqa: E402
from crossagent.tasks.task import Task  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "thread_speed.md"
THREADS = (1, 2)
EPISODES, EPISODE_STEPS = 8, 10
CONCURRENT, ROUNDS = 16, 3
REPEATS = 2  # the machine is shared: each setting is measured twice, interleaved


def eval_steps_per_second(model_path: str, threads: int | None) -> float:
    """In this process: eval-model's episode loop (its sampling settings) with `threads` (None: torch's default)."""
    if threads is not None:
        use_threads(threads)
    model, processor = load_model(model_path)
    sampler = LocalSampler(model, processor, GenerationSettings(max_new_tokens=32, do_sample=True, temperature=0.4))
    episodes = [(replace(task, budget=EPISODE_STEPS), 0) for task in load_suite().mini[:EPISODES]]

    def make_episode(index: int, task: Task, trial: int) -> Episode:
        agent = LevelAgent(ModelPolicy("mixed", history_length=3), mode="slow")
        return Episode(make_env(agent), agent, task, trial)

    stats = run_episodes(episodes, make_episode, lambda finished: None, EPISODES, sampler)
    return stats.steps_per_second


def serve_speed(model_path: Path, threads: int | None) -> tuple[float, float]:
    """(requests/s, p95 s) of rounds of concurrent valid requests to a `crossagent serve` process."""
    port = free_port()
    server = start_server(model_path, port, [] if threads is None else ["--threads", str(threads)])
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        with httpx.Client(timeout=600, limits=httpx.Limits(max_connections=CONCURRENT)) as client, \
                ThreadPoolExecutor(CONCURRENT) as pool:
            def timed(body: dict) -> float:
                started = time.perf_counter()
                client.post(url, json={**body, "seed": None}).raise_for_status()  # one setting: one batch
                return time.perf_counter() - started

            started = time.perf_counter()
            latencies = [s for r in range(ROUNDS) for s in pool.map(timed, [valid_body(r * 100 + i)
                                                                             for i in range(CONCURRENT)])]
            elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    return ROUNDS * CONCURRENT / elapsed, float(np.percentile(latencies, 95))


def main() -> None:
    if sys.argv[1:2] == ["--eval-child"]:  # a fresh process per thread count
        model_path, threads = sys.argv[2], json.loads(sys.argv[3])
        print(json.dumps(eval_steps_per_second(model_path, threads)))
        return
    settings = (None, *THREADS)
    measured: dict[int | None, list[tuple[float, float, float]]] = {threads: [] for threads in settings}
    with tempfile.TemporaryDirectory() as scratch:
        model_path = create_tiny_model(Path(scratch) / "tiny")
        for _ in range(REPEATS):
            for threads in settings:
                child = subprocess.run([sys.executable, __file__, "--eval-child", str(model_path),
                                        json.dumps(threads)], capture_output=True, text=True, check=True,
                                       env={**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"})
                steps = float(child.stdout.strip().splitlines()[-1])
                measured[threads].append((steps, *serve_speed(model_path, threads)))
                print(threads, measured[threads][-1], flush=True)
    rows = []
    for threads, runs in measured.items():
        label = f"torch's default ({torch.get_num_threads()})" if threads is None else str(threads)
        steps, requests, p95 = (" / ".join(f"{run[column]:.{digits}f}" for run in runs)
                                for column, digits in ((0, 1), (1, 1), (2, 2)))
        rows.append(f"| {label} | {steps} | {requests} | {p95} |")
    lines = [
        "# torch threads for eval-model and serve (tiny Qwen2-VL, CPU)",
        "",
        f"{os.cpu_count()} CPUs shared with other jobs. eval-model: {EPISODES} mini-suite episodes x "
        f"{EPISODE_STEPS} steps side by side, slow mode, eval sampling. serve: {ROUNDS} rounds of {CONCURRENT} "
        "concurrent valid requests (64x64 image, max_tokens 16). A fresh process per measurement; 'a / b': "
        "the two repeats.",
        "",
        "| torch threads | eval-model env steps/s | serve requests/s | serve p95 s |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        "Default chosen: 1 (`--threads`, models/threads.py).",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
