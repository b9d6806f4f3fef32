"""GRPO checkpoints without pickle: a run folder holds data only, so resuming from it runs no code from it.

    checkpoint-NNNNNN/
      model/                  the policy: save_pretrained (config.json, model.safetensors) + the processor
      optimizer.safetensors   every tensor of the optimizer's state ("state.<param>.<name>", e.g. exp_avg, step)
      optimizer.json          the rest of its state: plain values per parameter, the param groups (lr, betas, ...),
                              and the gradient scaler's numbers under fp16
      trainer_state.json      {"iteration", "config"}; written last: a checkpoint without it is incomplete

No RNG state is saved: every iteration re-seeds from (seed, iteration, rank) (train/grpo.py), so a
resumed run draws what an uninterrupted one would. The main process writes; every process reads.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file

from crossagent.json_files import read_json
from crossagent.models.processor import save_processor

if TYPE_CHECKING:
    from accelerate import Accelerator

    from crossagent.train.grpo import GRPOConfig

CHECKPOINT_PREFIX = "checkpoint-"
MODEL_DIR = "model"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_VALUES = "optimizer.json"
STATE_FILE = "trainer_state.json"


def checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    found = [path for path in Path(output_dir).glob(f"{CHECKPOINT_PREFIX}*") if (path / STATE_FILE).is_file()]
    return sorted(found, key=lambda path: int(path.name.removeprefix(CHECKPOINT_PREFIX)))


def save_model(directory: Path, model: torch.nn.Module, processor) -> None:
    """A transformers checkpoint (safetensors) with its processor: loadable by load_model, servable."""
    model.save_pretrained(directory)
    save_processor(processor, directory)


def save_checkpoint(config: GRPOConfig, iteration: int, accelerator: Accelerator, model: torch.nn.Module,
                    processor, optimizer: torch.optim.Optimizer) -> Path:
    """Write checkpoint-<iteration> and delete all but the newest `keep_checkpoints`."""
    path = Path(config.output_dir) / f"{CHECKPOINT_PREFIX}{iteration:06d}"
    if accelerator.is_main_process:
        save_model(path / MODEL_DIR, accelerator.unwrap_model(model), processor)
        tensors, values = split_tensors(optimizer.state_dict())
        if accelerator.scaler is not None:  # fp16 mixed precision: the loss scale and its growth tracker
            values["scaler"] = accelerator.scaler.state_dict()
        save_file(tensors, path / OPTIMIZER_TENSORS)
        (path / OPTIMIZER_VALUES).write_text(json.dumps(values, indent=1))
        (path / STATE_FILE).write_text(json.dumps({"iteration": iteration, "config": asdict(config)}, indent=1))
        for old in checkpoints(config.output_dir)[:-config.keep_checkpoints]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return path


DAMAGED = "delete that checkpoint folder to resume from the one before it"


def load_checkpoint(path: Path, accelerator: Accelerator, optimizer: torch.optim.Optimizer) -> int:
    """Restore the optimizer (and fp16 loss scale) from `path`; the completed iterations.
    The weights are loaded from path/model by load_model."""
    if not (path / OPTIMIZER_TENSORS).is_file():
        raise ValueError(f"{path}: no {OPTIMIZER_TENSORS}; checkpoints of accelerate's pickled format are not "
                         f"loaded (a pickle can run code). Delete it, or start a new run from --model {path / MODEL_DIR}")
    values = read_json(path / OPTIMIZER_VALUES, DAMAGED)
    state = join_tensors(values, load_file(path / OPTIMIZER_TENSORS))
    for saved, current in zip(state["param_groups"], optimizer.param_groups):
        saved.update({key: tuple(value) for key, value in saved.items() if isinstance(current.get(key), tuple)})
    optimizer.load_state_dict(state)
    if accelerator.scaler is not None and values.get("scaler"):
        accelerator.scaler.load_state_dict(values["scaler"])
    return int(read_json(path / STATE_FILE, DAMAGED)["iteration"])


def split_tensors(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer state_dict as (tensors by "state.<param>.<name>" / "param_groups.<i>.<name>", the rest)."""
    tensors = {}

    def plain(prefix: str, entries: dict) -> dict:
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{name}"] = value.detach().cpu().contiguous()
        return {name: value for name, value in entries.items() if not isinstance(value, torch.Tensor)}

    values = {"state": {str(param): plain(f"state.{param}", entries) for param, entries in state["state"].items()},
              "param_groups": [plain(f"param_groups.{i}", group) for i, group in enumerate(state["param_groups"])]}
    return tensors, values


def join_tensors(values: dict, tensors: dict[str, torch.Tensor]) -> dict:
    """split_tensors, inverted: an optimizer state_dict."""
    state = {int(param): dict(entries) for param, entries in values["state"].items()}
    groups = [dict(group) for group in values["param_groups"]]
    for key, tensor in tensors.items():
        kind, index, name = key.split(".", 2)
        (state.setdefault(int(index), {}) if kind == "state" else groups[int(index)])[name] = tensor
    return {"state": state, "param_groups": groups}
