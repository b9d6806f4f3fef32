"""A learned executor on disk, as models are: a folder with `model.safetensors` (the weights) and
`config.json` (the network's settings and what it was trained on). The latent level's codebook and
decoder (executors.latent_model) are stored the same way, with their own settings beside the policy's."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from crossagent.executors.policy import ExecutorPolicy, PolicyConfig

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
KIND = "crossagent learned executor"
TRAIN_HINT = "train it with `crossagent executors train --data RECORDING --out DIR`"


def save_module(module: nn.Module, folder: str | Path, settings: dict, training: dict | None = None) -> None:
    """Weights first, config last: a folder with a config holds a whole checkpoint. `settings`: the
    config's sections that rebuild the network (`policy`, ...)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({name: tensor.contiguous() for name, tensor in module.state_dict().items()}, str(folder / WEIGHTS))
    config = {"kind": KIND, **settings, "training": training or {}}
    (folder / CONFIG).write_text(json.dumps(config, indent=1) + "\n")


def save_policy(policy: ExecutorPolicy, folder: str | Path, training: dict | None = None) -> None:
    save_module(policy, folder, {"policy": asdict(policy.config)}, training)


def read_config(folder: str | Path, hint: str = TRAIN_HINT) -> dict:
    path = Path(folder) / CONFIG
    if not path.exists():
        raise FileNotFoundError(f"{folder} holds no learned executor (no {CONFIG}); {hint}")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is damaged ({error}); {hint} again") from None
    if not isinstance(config, dict) or config.get("kind") != KIND or not isinstance(config.get("policy"), dict):
        raise ValueError(f"{path} is not a learned executor's config; {hint}")
    return config


def policy_config(folder: Path, config: dict, hint: str = TRAIN_HINT) -> PolicyConfig:
    known = {f.name for f in fields(PolicyConfig)}
    try:
        return PolicyConfig(**{k: v for k, v in config["policy"].items() if k in known})
    except TypeError as error:
        raise ValueError(f"{folder / CONFIG} lacks settings of the policy ({error}); {hint} again") from None


def load_weights(module: nn.Module, folder: Path, hint: str = TRAIN_HINT) -> nn.Module:
    """`module` with the folder's weights, in eval mode."""
    if not (folder / WEIGHTS).exists():
        raise FileNotFoundError(f"{folder} has a config but no {WEIGHTS}; {hint} again")
    try:
        module.load_state_dict(load_file(str(folder / WEIGHTS)))
    except (SafetensorError, OSError, RuntimeError) as error:
        raise ValueError(f"{folder / WEIGHTS} is damaged or does not fit its config ({error}); {hint} again") from None
    return module.eval()


def load_policy(folder: str | Path, level: str | None = None) -> ExecutorPolicy:
    """The policy in `folder`, in eval mode; `level` checks that it executes that level."""
    folder = Path(folder)
    policy = ExecutorPolicy(policy_config(folder, read_config(folder)))
    if level is not None and policy.config.level != level:
        raise ValueError(f"{folder} holds the {policy.config.level} executor, not the {level} one")
    return load_weights(policy, folder)
