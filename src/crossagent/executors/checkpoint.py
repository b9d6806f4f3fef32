"""A learned executor on disk, as models are: a folder with `model.safetensors` (the weights) and
`config.json` (the network's settings and what it was trained on)."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from crossagent.executors.policy import ExecutorPolicy, PolicyConfig

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
KIND = "crossagent learned executor"
TRAIN_HINT = "train it with `crossagent executors train --data RECORDING --out DIR`"


def save_policy(policy: ExecutorPolicy, folder: str | Path, training: dict | None = None) -> None:
    """Weights first, config last: a folder with a config holds a whole checkpoint."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({name: tensor.contiguous() for name, tensor in policy.state_dict().items()}, str(folder / WEIGHTS))
    config = {"kind": KIND, "policy": asdict(policy.config), "training": training or {}}
    (folder / CONFIG).write_text(json.dumps(config, indent=1) + "\n")


def read_config(folder: str | Path) -> dict:
    path = Path(folder) / CONFIG
    if not path.exists():
        raise FileNotFoundError(f"{folder} holds no learned executor (no {CONFIG}); {TRAIN_HINT}")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is damaged ({error}); {TRAIN_HINT} again") from None
    if not isinstance(config, dict) or config.get("kind") != KIND or not isinstance(config.get("policy"), dict):
        raise ValueError(f"{path} is not a learned executor's config; {TRAIN_HINT}")
    return config


def load_policy(folder: str | Path, level: str | None = None) -> ExecutorPolicy:
    """The policy in `folder`, in eval mode; `level` checks that it executes that level."""
    folder = Path(folder)
    config = read_config(folder)
    known = {f.name for f in fields(PolicyConfig)}
    try:
        policy = ExecutorPolicy(PolicyConfig(**{k: v for k, v in config["policy"].items() if k in known}))
    except TypeError as error:
        raise ValueError(f"{folder / CONFIG} lacks settings of the policy ({error}); {TRAIN_HINT} again") from None
    if level is not None and policy.config.level != level:
        raise ValueError(f"{folder} holds the {policy.config.level} executor, not the {level} one")
    if not (folder / WEIGHTS).exists():
        raise FileNotFoundError(f"{folder} has a config but no {WEIGHTS}; {TRAIN_HINT} again")
    try:
        policy.load_state_dict(load_file(str(folder / WEIGHTS)))
    except (SafetensorError, OSError, RuntimeError) as error:
        raise ValueError(f"{folder / WEIGHTS} is damaged or does not fit its config ({error}); {TRAIN_HINT} again") from None
    return policy.eval()
