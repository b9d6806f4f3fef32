"""The learned executor's network: a small CNN over the 9x7 view joined with the status and context vector;
two heads, the next primitive action and whether the abstract action is done after it.

The CNN reads one plane per symbol, a plane marking the grounding target, one marking the faced cell (what
`do` acts on), and the command (the abstract action) broadcast over every cell, so that what it looks for
depends on what it was asked; the command also adds a learned prior to the action logits directly
(`make stone pickaxe` is mostly one action whatever the view)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.text_view import LOCAL_VIEW
from crossagent.executors.features import COMMAND_SIZE, VECTOR_SIZE, Batch, StepInput, stack
from crossagent.executors.observation import SYMBOLS

DONE_THRESHOLD = 0.5


@dataclass(frozen=True)
class PolicyConfig:
    level: str
    command_size: int
    vector_size: int = VECTOR_SIZE
    symbols: int = len(SYMBOLS)
    actions: int = len(ACTION_NAMES)
    conv_channels: int = 32
    hidden: int = 256

    @classmethod
    def for_level(cls, level: str, **sizes: int) -> "PolicyConfig":
        return cls(level, COMMAND_SIZE[level], **sizes)


class ExecutorPolicy(nn.Module):
    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = config
        channels = config.symbols + 2 + config.command_size  # + the target and facing planes, the command
        self.conv = nn.Sequential(
            nn.Conv2d(channels, config.conv_channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(config.conv_channels, config.conv_channels, 3, padding=1), nn.ReLU(), nn.Flatten())
        cells = LOCAL_VIEW[0] * LOCAL_VIEW[1]
        self.body = nn.Sequential(
            nn.Linear(config.conv_channels * cells + config.vector_size, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, config.hidden), nn.ReLU())
        self.action_head = nn.Linear(config.hidden, config.actions)
        self.command_prior = nn.Linear(config.command_size, config.actions, bias=False)
        self.done_head = nn.Linear(config.hidden, 1)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(action logits (N, actions), done logits (N,))."""
        grid = nn.functional.one_hot(batch.symbols.long(), self.config.symbols).permute(0, 3, 1, 2).float()
        rows, columns = grid.shape[2], grid.shape[3]
        command = batch.command[:, :, None, None].expand(-1, -1, rows, columns)
        planes = torch.cat([grid, _plane(batch.target, rows, columns), _plane(batch.facing, rows, columns), command], 1)
        hidden = self.body(torch.cat([self.conv(planes), batch.vector], 1))
        return self.action_head(hidden) + self.command_prior(batch.command), self.done_head(hidden).squeeze(1)

    @torch.no_grad()
    def act(self, step: StepInput, generator: torch.Generator) -> tuple[int, bool]:
        """An action sampled from the policy, and done when its probability passes DONE_THRESHOLD."""
        logits, done = self(stack([step]))
        action = int(torch.multinomial(torch.softmax(logits[0], 0), 1, generator=generator))
        return action, bool(torch.sigmoid(done[0]) > DONE_THRESHOLD)


def _plane(slots: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
    """(N, 1, rows, columns): 1 at each example's slot (row * columns + column), none where the slot is -1."""
    plane = nn.functional.one_hot(slots.clamp(min=0), rows * columns).float() * (slots >= 0).unsqueeze(1)
    return plane.view(-1, 1, rows, columns)
