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
from datasets import load_from_disk

from crossagent.train.sft import FinalReplyCollator, reply_loss

DEMONSTRATION_STREAM = 2  # apart from the draw of tasks (none) and of expert prefixes (1)
MAX_LENGTH = 4096  # tokens per example; the SFT examples of the packaged formats are far shorter


class Demonstrations:
    """A labelled data set (`crossagent data label`) and the reply loss of random batches of it."""

    def __init__(self, dataset: str, processor, per_step: int):
        """`per_step`: examples per optimizer step, at least 1 (GRPOConfig builds none at 0)."""
        try:
            self.dataset = load_from_disk(dataset)
        except FileNotFoundError as error:
            raise FileNotFoundError(f"no demonstration data set at {dataset} (a folder saved by "
                                    "`crossagent data label`)") from error
        if len(self.dataset) == 0:
            raise ValueError(f"the demonstration data set {dataset} has no examples")
        self.collator = FinalReplyCollator(processor, MAX_LENGTH)
        self.per_step = per_step

    def rows(self, seed: int, iteration: int, epoch: int, step: int, rank: int) -> list[int]:
        """The examples of this step of this process: `per_step` drawn at random, with replacement."""
        rng = np.random.default_rng([seed, iteration, epoch, step, rank, DEMONSTRATION_STREAM])
        return rng.integers(len(self.dataset), size=self.per_step).tolist()

    def loss(self, model: torch.nn.Module, seed: int, iteration: int, epoch: int, step: int, rank: int
             ) -> torch.Tensor:
        """The mean reply cross-entropy of the examples of this step of this process."""
        batch = self.collator([self.dataset[row] for row in self.rows(seed, iteration, epoch, step, rank)])
        device = next(model.parameters()).device
        loss, _, _ = reply_loss(model, {key: value.to(device) for key, value in batch.items()})
        return loss
