"""One process of a multi-process GRPO run, for tests/train/test_grpo_processes.py (run under `accelerate launch`).

    python grpo_process.py CONFIG_JSON REPORT_DIR

Trains with the GRPOConfig in CONFIG_JSON, then writes REPORT_DIR/rank-<rank>.json: this process's
final weights (a SHA-256 over every parameter's name and bytes), its metrics, and the process count.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: nothing may come from a hub

import torch  # noqa: E402

from crossagent.train import grpo  # noqa: E402


def weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, parameter in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main(config_json: str, report_dir: str) -> None:
    torch.set_num_threads(1)  # two processes share a small CPU
    runs: list[grpo.Run] = []
    prepare_run = grpo.prepare_run

    def keep_run(config: grpo.GRPOConfig) -> grpo.Run:
        # train() keeps its Run to itself; this process's weights after training are what the test needs.
        runs.append(prepare_run(config))
        return runs[-1]

    grpo.prepare_run = keep_run
    result = grpo.train(grpo.GRPOConfig(**json.loads(Path(config_json).read_text())))
    accelerator = runs[0].accelerator
    report = {"processes": accelerator.num_processes, "history": result.history,
              "weights": weights_digest(accelerator.unwrap_model(runs[0].model))}
    Path(report_dir, f"rank-{accelerator.process_index}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:])
