"""The learned executor's network: a small CNN over the 9x7 view (one-hot symbols plus a plane that marks
the grounding target) joined with the status, command and context vector; two heads, the next primitive
action and whether the abstract action is done after it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.text_view import LOCAL_VIEW
from crossagent.executors.features import Batch, StepInput, stack, vector_size
from crossagent.executors.observation import SYMBOLS

DONE_THRESHOLD = 0.5


@dataclass(frozen=True)
class PolicyConfig:
    level: str
    vector_size: int
    symbols: int = len(SYMBOLS)
    actions: int = len(ACTION_NAMES)
    conv_channels: int = 32
    hidden: int = 256

    @classmethod
    def for_level(cls, level: str, **sizes: int) -> "PolicyConfig":
        return cls(level, vector_size(level), **sizes)


class ExecutorPolicy(nn.Module):
    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = config
        channels = config.symbols + 1  # + the target plane
        self.conv = nn.Sequential(
            nn.Conv2d(channels, config.conv_channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(config.conv_channels, config.conv_channels, 3, padding=1), nn.ReLU(), nn.Flatten())
        cells = LOCAL_VIEW[0] * LOCAL_VIEW[1]
        self.body = nn.Sequential(
            nn.Linear(config.conv_channels * cells + config.vector_size, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, config.hidden), nn.ReLU())
        self.action_head = nn.Linear(config.hidden, config.actions)
        self.done_head = nn.Linear(config.hidden, 1)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(action logits (N, actions), done logits (N,))."""
        grid = nn.functional.one_hot(batch.symbols.long(), self.config.symbols).permute(0, 3, 1, 2).float()
        plane = nn.functional.one_hot(batch.target.clamp(min=0), grid.shape[2] * grid.shape[3]).float()
        plane = (plane * (batch.target >= 0).unsqueeze(1)).view(-1, 1, grid.shape[2], grid.shape[3])
        hidden = self.body(torch.cat([self.conv(torch.cat([grid, plane], 1)), batch.vector], 1))
        return self.action_head(hidden), self.done_head(hidden).squeeze(1)

    @torch.no_grad()
    def act(self, step: StepInput) -> tuple[int, bool]:
        """Greedy: the most likely action, and done when its probability passes DONE_THRESHOLD."""
        logits, done = self(stack([step]))
        return int(logits[0].argmax()), bool(torch.sigmoid(done[0]) > DONE_THRESHOLD)
