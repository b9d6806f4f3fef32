"""Training data of the latent level (executors.latent_model), from a recorded expert trajectory.

A chunk starts at every step: the step's action and the next ones, `chunk` in all (fewer at the
episode's end). Each of its steps is a decoder row: what the decoder reads there (the step's recorded
text view, the chunk's actions so far as its history), the expert's action, and done at the chunk's
last action. Rows keep the index of their chunk, whose code the encoder computes while training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from crossagent.data.labelling import Steps
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.executors.features import Batch, stack, step_input
from crossagent.executors.latent_model import chunk_at
from crossagent.executors.observation import parse_view


@dataclass(frozen=True)
class LatentExamples:
    chunks: torch.Tensor  # (C, chunk) long: action indices, END-padded
    inputs: Batch  # (N rows) the decoder's view and context; its command is the code's, set while training
    chunk_index: torch.Tensor  # (N,) long: the chunk each row belongs to
    first_rows: torch.Tensor  # (C,) long: each chunk's first row (its first view, which the encoder may read)
    positions: torch.Tensor  # (N,) long: the row's place in its chunk
    actions: torch.Tensor  # (N,) long
    done: torch.Tensor  # (N,) float

    def __len__(self) -> int:
        return len(self.actions)

    def first_views(self, chunks: torch.Tensor) -> Batch:
        """The first views of `chunks` (indices), for the encoder."""
        return self.inputs.select(self.first_rows[chunks])


def episode_actions(steps: Steps) -> list[int]:
    return [ACTION_NAMES.index(step.action) for step in steps]


def latent_examples(episodes: Sequence[Steps], chunk: int) -> LatentExamples:
    chunks, inputs, chunk_index, first_rows, positions, actions, done = [], [], [], [], [], [], []
    for steps in episodes:
        indices = episode_actions(steps)
        views = [parse_view(step.text) for step in steps]
        for start in range(len(steps)):
            length = min(chunk, len(steps) - start)
            first_rows.append(len(inputs))
            for k in range(length):
                inputs.append(step_input(views[start + k], [], None, indices[start:start + k], k))
                chunk_index.append(len(chunks))
                positions.append(k)
                actions.append(indices[start + k])
                done.append(k == length - 1)
            chunks.append(chunk_at(indices, start, chunk))
    if not chunks:
        raise ValueError("the recording holds no step to learn latent actions from")
    return LatentExamples(torch.tensor(chunks, dtype=torch.long), stack(inputs),
                          torch.tensor(chunk_index, dtype=torch.long), torch.tensor(first_rows, dtype=torch.long),
                          torch.tensor(positions, dtype=torch.long),
                          torch.tensor(actions, dtype=torch.long), torch.tensor(done, dtype=torch.float))
