"""The one supervised loop of the small learned models (train.executors, train.latent): Adam over
shuffled minibatches for some epochs, every LOG_EVERY steps a row of `loss_curve.csv`, a bar with
rate and ETA, and `loss_curve.png` at the end.

Each caller says what a minibatch costs: `step_loss(index)` gets the indices of one minibatch and
returns the loss to minimise and a function giving the values to log (the curve's columns), called only
on the steps that log a row, so the other steps pay no extra sync or metric.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from crossagent.progress import progress_bar
from crossagent.train.curves import CURVE_CSV, CURVE_PNG, plot_curve

LOG_EVERY = 20  # optimizer steps between loss rows

StepLoss = Callable[[torch.Tensor], tuple[torch.Tensor, Callable[[], dict[str, float]]]]


@dataclass(frozen=True)
class Minibatches:
    count: int  # examples to draw minibatches from
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int  # of the shuffle


def fit_minibatches(model: nn.Module, batches: Minibatches, step_loss: StepLoss, columns: tuple[str, ...],
                    folder: Path, description: str, progress: bool = True) -> None:
    """Train `model` in place; `columns`: the names of what `step_loss` logs, written after `step`."""
    optimizer = torch.optim.Adam(model.parameters(), lr=batches.learning_rate)
    total = batches.epochs * -(-batches.count // batches.batch_size)
    folder.mkdir(parents=True, exist_ok=True)
    curve = folder / CURVE_CSV
    generator = torch.Generator().manual_seed(batches.seed)
    model.train()
    with curve.open("w", newline="") as file, progress_bar(total, f"train {description}", enabled=progress,
                                                           unit="step") as bar:
        writer = csv.writer(file)
        writer.writerow(["step", *columns])
        step = 0
        for _ in range(batches.epochs):
            for index in torch.randperm(batches.count, generator=generator).split(batches.batch_size):
                loss, logged = step_loss(index)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                bar.update(1)
                if step % LOG_EVERY == 0 or step == total:
                    values = logged()
                    writer.writerow([step, *(f"{values[name]:.5f}" for name in columns)])
                    bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    model.eval()
    plot_curve(curve, folder / CURVE_PNG, title=description)
