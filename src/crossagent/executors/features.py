"""A learned executor's input at one step: the parsed view, the abstract action it executes (its
command, in numbers), and what it did so far in this call.

Training (train.executors) and execution (executors.learned) build inputs with these functions only,
so the policy reads the same thing in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from crossagent.actions import motion
from crossagent.actions.grounding import LABELS
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.text_view import LOCAL_VIEW
from crossagent.executors.observation import CENTRE, STATUS_SIZE, View, status_tensor, symbol_ids

Offset = tuple[int, int]  # a view cell relative to the player (dx, dy)
HISTORY = 4  # own previous actions fed back: a memoryless policy loops less when it knows its last moves
STEP_SCALE = 200.0  # steps so far are read as steps / STEP_SCALE (the LevelAgent's budget per call)
OFFSET_SCALE = 8.0
NO_TARGET = -1

COMMAND_SIZE = {
    "motion": len(ACTION_NAMES) + motion.MAX_REPEAT,
    "grounding": len(VOCABULARY.grounding.verbs) + len(LABELS) + 1 + 3,
    "skill": len(VOCABULARY.skill.sentences),
}
CONTEXT_SIZE = HISTORY * (len(ACTION_NAMES) + 1) + 1


VECTOR_SIZE = STATUS_SIZE + CONTEXT_SIZE


def _one_hot(index: int | None, size: int) -> list[float]:
    values = [0.0] * size
    if index is not None:
        values[index] = 1.0
    return values


def motion_command(action: str, remaining: int) -> list[float]:
    """The motion's primitive action and how many repeats are left (1..MAX_REPEAT)."""
    remaining = max(1, min(remaining, motion.MAX_REPEAT))
    return _one_hot(ACTION_NAMES.index(action), len(ACTION_NAMES)) + _one_hot(remaining - 1, motion.MAX_REPEAT)


def grounding_command(verb: str, label: str | None, offset: Offset | None) -> list[float]:
    """The verb, the label (or none) and where the target is now relative to the player (also drawn on the
    grid as the target plane when it is in view)."""
    label_index = LABELS.index(label) if label in LABELS else len(LABELS)
    where = [0.0, 0.0, 0.0] if offset is None else [1.0, offset[0] / OFFSET_SCALE, offset[1] / OFFSET_SCALE]
    return (_one_hot(VOCABULARY.grounding.verbs.index(verb), len(VOCABULARY.grounding.verbs))
            + _one_hot(label_index, len(LABELS) + 1) + where)


def skill_command(sentence: str) -> list[float]:
    return _one_hot(VOCABULARY.skill.sentences.index(sentence), len(VOCABULARY.skill.sentences))


def target_slot(offset: Offset | None) -> int:
    """The view slot (row * columns + column) of a target offset, NO_TARGET if none or out of view."""
    if offset is None:
        return NO_TARGET
    column, row = CENTRE[0] + offset[0], CENTRE[1] + offset[1]
    if 0 <= column < LOCAL_VIEW[0] and 0 <= row < LOCAL_VIEW[1]:
        return row * LOCAL_VIEW[0] + column
    return NO_TARGET


def facing_slot(view: View) -> int:
    """The view slot of the cell the player faces (what `do` acts on)."""
    dx, dy = VOCABULARY.directions[view.facing]
    return target_slot((dx, dy))


@dataclass(frozen=True)
class StepInput:
    symbols: torch.Tensor  # (rows, columns) uint8 indices into observation.SYMBOLS
    target: int  # target_slot(...)
    facing: int  # facing_slot(...)
    command: torch.Tensor  # the abstract action (COMMAND_SIZE[level])
    vector: torch.Tensor  # status and context (VECTOR_SIZE)


def step_input(view: View, command: Sequence[float], offset: Offset | None, history: Sequence[int],
               steps: int) -> StepInput:
    """`history`: the actions this call yielded so far (the last HISTORY are read)."""
    recent = list(history[-HISTORY:])
    recent = [None] * (HISTORY - len(recent)) + recent
    context = [value for action in recent for value in _one_hot(len(ACTION_NAMES) if action is None else action,
                                                                 len(ACTION_NAMES) + 1)]
    vector = torch.cat([status_tensor(view), torch.tensor([*context, min(steps, STEP_SCALE) / STEP_SCALE])])
    return StepInput(symbol_ids(view), target_slot(offset), facing_slot(view), torch.tensor(list(command)).float(),
                     vector.float())


@dataclass(frozen=True)
class Batch:
    symbols: torch.Tensor  # (N, rows, columns) uint8
    target: torch.Tensor  # (N,) long
    facing: torch.Tensor  # (N,) long
    command: torch.Tensor  # (N, COMMAND_SIZE[level]) float
    vector: torch.Tensor  # (N, VECTOR_SIZE) float

    def __len__(self) -> int:
        return len(self.target)

    def select(self, index: torch.Tensor) -> "Batch":
        return Batch(self.symbols[index], self.target[index], self.facing[index], self.command[index],
                     self.vector[index])


def stack(inputs: Sequence[StepInput]) -> Batch:
    return Batch(torch.stack([i.symbols for i in inputs]), torch.tensor([i.target for i in inputs], dtype=torch.long),
                 torch.tensor([i.facing for i in inputs], dtype=torch.long), torch.stack([i.command for i in inputs]),
                 torch.stack([i.vector for i in inputs]))
