"""Demonstrations in the GRPO update: the supervised loss on the SFT data set, added to each optimizer step.

Why: GRPO's signal is relative within a group, so nothing holds on to what the start did well in a group that
all succeeds, and kinds it never solves give no signal at all. Measured on 3 seeds (docs/grpo.md), GRPO lost
successes on easy crafting kinds the start solved (a wooden pickaxe from scratch) while it gained elsewhere, and
the same start continued by SFT gained on crafting. Adding the cold start's own loss on a few of its examples
to every step (as SRFT and LUFFY mix demonstrations into RL) anchors the policy to the demonstrations while the
rollouts move it. Each example is drawn at random from the data set, with its own random stream per
(seed, iteration, pass, step, process), so a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import numpy as np
import torch
from datasets import Dataset, load_from_disk

from crossagent.train.sft import FinalReplyCollator, reply_loss

DEMONSTRATION_STREAM = 2  # apart from the draw of tasks (none) and of expert prefixes (1)
MAX_LENGTH = 4096  # tokens per example; the SFT examples of the packaged formats are far shorter


def load_demonstrations(folder: str) -> Dataset:
    """A labelled data set saved by `crossagent data label`, with at least one example."""
    try:
        dataset = load_from_disk(folder)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"no demonstration data set at {folder} (a folder saved by "
                                "`crossagent data label`)") from error
    if len(dataset) == 0:
        raise ValueError(f"the demonstration data set {folder} has no examples")
    return dataset


class Demonstrations:
    """Labelled examples and the reply loss of random batches of them."""

    def __init__(self, dataset: Dataset, processor, per_step: int, stream: int = DEMONSTRATION_STREAM):
        """`per_step`: examples per optimizer step, at least 1 (GRPOConfig builds none at 0); `stream`: the random
        stream of the draws, one per source of examples."""
        self.dataset, self.per_step, self.stream = dataset, per_step, stream
        self.collator = FinalReplyCollator(processor, MAX_LENGTH)

    def rows(self, seed: int, iteration: int, epoch: int, step: int, rank: int) -> list[int]:
        """The examples of this step of this process: `per_step` drawn at random, with replacement."""
        rng = np.random.default_rng([seed, iteration, epoch, step, rank, self.stream])
        return rng.integers(len(self.dataset), size=self.per_step).tolist()

    def loss(self, model: torch.nn.Module, seed: int, iteration: int, epoch: int, step: int, rank: int
             ) -> torch.Tensor:
        """The mean reply cross-entropy of the examples of this step of this process."""
        batch = self.collator([self.dataset[row] for row in self.rows(seed, iteration, epoch, step, rank)])
        device = next(model.parameters()).device
        loss, _, _ = reply_loss(model, {key: value.to(device) for key, value in batch.items()})
        return loss
