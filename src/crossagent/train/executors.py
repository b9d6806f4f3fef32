"""Behaviour cloning of the learned executors (executors/): one small policy per upper level, trained on
a recorded expert trajectory segmented by the labellers (data.executor_examples).

Per level: episodes are split into training and validation (by episode, so no segment is in both),
the policy is trained with Adam on cross-entropy for the action plus binary cross-entropy for done,
the loss goes to `loss_curve.csv` as it comes and to `loss_curve.png` at the end, and the checkpoint
(executors.checkpoint) records the settings, the data's fingerprint and the validation accuracies.
A level whose folder holds a checkpoint from the same settings and data is skipped (the run resumes
level by level); one from other settings is refused, naming what differs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from crossagent.data.executor_examples import Examples, examples
from crossagent.data.recording import episodes_of, load_trajectories, read_manifest
from crossagent.executors.checkpoint import CONFIG, TRAIN_HINT, read_config, save_policy
from crossagent.executors.policy import ExecutorPolicy, PolicyConfig
from crossagent.executors.registry import LEARNED_LEVELS
from crossagent.fingerprint import changes, fingerprint
from crossagent.folder_lock import writes_folder
from crossagent.train.minibatch_loop import Minibatches, fit_minibatches


@dataclass(frozen=True)
class ExecutorTrainConfig:
    epochs: int = 8  # passes over each level's training examples
    batch_size: int = 256
    learning_rate: float = 1e-3
    done_weight: float = 1.0  # weight of the done loss next to the action loss
    validation_share: float = 0.1  # share of episodes held out to measure accuracy
    hidden: int = 256  # width of the policy's two hidden layers
    conv_channels: int = 32  # channels of its two 3x3 convolutions over the view
    seed: int = 0


@dataclass(frozen=True)
class LevelResult:
    level: str
    skipped: bool  # already trained with these settings
    examples: int  # training examples
    seconds: float
    validation: dict  # action and done accuracy on held-out episodes


@writes_folder(lambda call: call["out"])
def train_executors(data: str | Path, out: str | Path, levels: Sequence[str] = LEARNED_LEVELS,
                    config: ExecutorTrainConfig = ExecutorTrainConfig(), progress: bool = True) -> list[LevelResult]:
    """Train every level in `levels` from the recording `data` into `out/LEVEL`."""
    unknown = [level for level in levels if level not in LEARNED_LEVELS]
    if unknown:
        raise ValueError(f"no learned executor for {', '.join(unknown)} (levels: {', '.join(LEARNED_LEVELS)})")
    manifest = read_manifest(data)
    settings = {"config": asdict(config), "data": fingerprint(manifest["episodes"])}
    out = Path(out)
    todo = [level for level in levels if not trained_with(out / level, settings)]
    results = [LevelResult(level, True, 0, 0.0, {}) for level in levels if level not in todo]
    if not todo:
        return results
    episodes = episodes_of(load_trajectories(data))
    random.Random(config.seed).shuffle(episodes)
    held = max(1, int(len(episodes) * config.validation_share)) if len(episodes) > 1 else 0
    for level in todo:
        results.append(train_level(level, episodes[held:], episodes[:held], manifest["image_size"], out / level,
                                   config, settings, progress))
    return sorted(results, key=lambda r: levels.index(r.level))


def trained_with(folder: Path, settings: dict, hint: str = TRAIN_HINT) -> bool:
    """Whether `folder` holds a checkpoint trained with `settings`; one trained otherwise is refused."""
    if not (folder / CONFIG).exists():  # nothing yet, or a run stopped before its checkpoint: train it
        return False
    stored = read_config(folder, hint)["training"].get("settings", {})
    differs = changes(stored, settings)
    if differs:
        raise ValueError(f"{folder} holds an executor trained otherwise ({'; '.join(differs)}); "
                         f"use another --out or delete it")
    return True


def train_level(level: str, train: Sequence, validation: Sequence, image_size: int, folder: Path,
                config: ExecutorTrainConfig, settings: dict, progress: bool = True) -> LevelResult:
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    data = examples(train, level, image_size)
    policy = ExecutorPolicy(PolicyConfig.for_level(level, hidden=config.hidden, conv_channels=config.conv_channels))

    def step_loss(index: torch.Tensor) -> tuple[torch.Tensor, Callable[[], dict[str, float]]]:
        action_loss, done_loss = losses(policy, data.select(index))
        loss = action_loss + config.done_weight * done_loss
        return loss, lambda: {"loss": loss.item(), "action_loss": action_loss.item(), "done_loss": done_loss.item()}

    fit_minibatches(policy, Minibatches(len(data), config.epochs, config.batch_size, config.learning_rate, config.seed),
                    step_loss, ("loss", "action_loss", "done_loss"), folder, f"{level} executor", progress)
    scores = accuracy(policy, examples(validation, level, image_size)) if validation else {}
    seconds = time.perf_counter() - started
    save_policy(policy, folder, {"settings": settings, "examples": len(data), "episodes": len(train),
                                 "seconds": round(seconds, 1), "validation": scores})
    return LevelResult(level, False, len(data), seconds, scores)


def losses(policy: ExecutorPolicy, batch: Examples) -> tuple[torch.Tensor, torch.Tensor]:
    action_logits, done_logits = policy(batch.inputs)
    return (nn.functional.cross_entropy(action_logits, batch.actions),
            nn.functional.binary_cross_entropy_with_logits(done_logits, batch.done))


@torch.no_grad()
def accuracy(policy: ExecutorPolicy, batch: Examples) -> dict:
    """Greedy action accuracy, done accuracy, and done recall (the segment ends it catches)."""
    policy.eval()
    action_logits, done_logits = policy(batch.inputs)
    policy.train()
    said_done = done_logits > 0
    ends = batch.done > 0.5
    return {"examples": len(batch), "action": round((action_logits.argmax(1) == batch.actions).float().mean().item(), 4),
            "done": round((said_done == ends).float().mean().item(), 4),
            "done_recall": round(said_done[ends].float().mean().item(), 4) if ends.any() else None}
