"""Behaviour-cloning examples for the learned executors (executors/), from a recorded expert trajectory.

The labellers (data.labelling) give every step its motion, grounding and skill label; a segment is a
run of steps that execute one abstract action, and its last step is where the executor says done:
- motion:    a run of one action (the label's count is the repeats left, done at 1).
- grounding: steps whose label points at the same next interaction (or explores toward it), done at the
             interaction; plus `approach` segments in hindsight, as the grounding oracle asks for them
             (the farthest cell of the coming path still in view, walked onto, done on arrival): the
             labels never say approach, the oracle often does.
- skill:     steps heading for the same next achievement event, done at the event.
Each example is what the executor reads at that step (executors.features.step_input, from the step's
recorded text view) with the expert's action and the done flag.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass

import torch

from crossagent.data.labelling import (Steps, grounding_labels, is_interaction, motion_labels, next_where,
                                       skill_labels)
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.text_view import LOCAL_VIEW
from crossagent.executors.features import (Batch, Offset, StepInput, grounding_command, motion_command,
                                           skill_command, stack, step_input)
from crossagent.executors.learned import STEP_CAP, offset_of_point
from crossagent.executors.observation import CENTRE, parse_view

MATERIAL_OF_SYMBOL = {symbol: material for material, symbol in VOCABULARY.text_view.material_symbols.items()}
APPROACH_EVERY = 3  # a hindsight approach segment starts at every third step (each start adds a whole path)


@dataclass(frozen=True)
class Examples:
    inputs: Batch
    actions: torch.Tensor  # (N,) long
    done: torch.Tensor  # (N,) float

    def __len__(self) -> int:
        return len(self.actions)

    def select(self, index: torch.Tensor) -> "Examples":
        return Examples(self.inputs.select(index), self.actions[index], self.done[index])


def examples(episodes: Sequence[Steps], level: str, image_size: int) -> Examples:
    rows = [row for steps in episodes for row in EXAMPLES_OF[level](steps, image_size)]
    if not rows:
        raise ValueError(f"the recording holds no {level} segment to learn from")
    inputs, actions, done = zip(*rows)
    return Examples(stack(inputs), torch.tensor(actions, dtype=torch.long), torch.tensor(done, dtype=torch.float))


Row = tuple[StepInput, int, bool]
Command = Callable[[int, int], tuple[list[float], Offset | None]]  # (step index, steps into the segment)


def _segment_rows(steps: Steps, indices: Sequence[int], command: Command) -> Iterator[Row]:
    """One row per step of a segment, done at its last."""
    for k, i in enumerate(indices):
        vector, offset = command(i, k)
        history = [ACTION_NAMES.index(steps[j].action) for j in indices[:k]]
        yield (step_input(parse_view(steps[i].text), vector, offset, history, k), ACTION_NAMES.index(steps[i].action),
               k == len(indices) - 1)


def _runs(keys: Sequence[Hashable]) -> Iterator[list[int]]:
    """Runs of consecutive equal keys, as lists of step indices."""
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            yield list(range(start, i))
            start = i


def motion_rows(steps: Steps, image_size: int) -> Iterator[Row]:
    labels = motion_labels(steps)
    # A new segment where the count does not go down by one from the step before.
    keys, segment = [], 0
    for i, label in enumerate(labels):
        before = labels[i - 1] if i else None
        if before is None or before.action != label.action or before.count != label.count + 1:
            segment += 1
        keys.append(segment)
    for run in _runs(keys):
        yield from _segment_rows(steps, run, lambda i, k: (motion_command(labels[i].action, labels[i].count), None))


def grounding_rows(steps: Steps, image_size: int) -> Iterator[Row]:
    labels = grounding_labels(steps, image_size)
    upcoming = next_index(steps, is_interaction)
    # A no-op is one step; every other label runs until its interaction (or until the target comes into view).
    keys = [(label.verb, label.point is not None, upcoming[i], i if label.verb == "no-op" else None)
            for i, label in enumerate(labels)]
    for run in _runs(keys):
        yield from _segment_rows(steps, run, lambda i, k: _pointed(labels[i], image_size))
    yield from approach_rows(steps, upcoming)


def _pointed(label, image_size: int) -> tuple[list[float], Offset | None]:
    offset = offset_of_point(label.point, image_size)
    return grounding_command(label.verb, label.label, offset), offset


def approach_rows(steps: Steps, upcoming: Sequence[int | None]) -> Iterator[Row]:
    for start in range(0, len(steps), APPROACH_EVERY):
        end = min(upcoming[start] if upcoming[start] is not None else len(steps), start + STEP_CAP["grounding"])
        here = steps[start].position
        seen = [j for j in range(start, end) if _in_view(here, steps[j].arrived) and steps[j].arrived != here]
        if not seen:
            continue
        cell = steps[seen[-1]].arrived
        last = next(j for j in range(start, end) if steps[j].arrived == cell)
        # The label names what the cell shows at the start, as the oracle's label does.
        shown = parse_view(steps[start].text).symbol(CENTRE[0] + cell[0] - here[0], CENTRE[1] + cell[1] - here[1])
        label = MATERIAL_OF_SYMBOL.get(shown)

        def command(i: int, k: int, cell=cell, label=label) -> tuple[list[float], Offset]:
            offset = (cell[0] - steps[i].position[0], cell[1] - steps[i].position[1])
            return grounding_command("approach", label, offset), offset

        yield from _segment_rows(steps, range(start, last + 1), command)


def _in_view(player: tuple[int, int], cell: tuple[int, int]) -> bool:
    return abs(cell[0] - player[0]) <= LOCAL_VIEW[0] // 2 and abs(cell[1] - player[1]) <= LOCAL_VIEW[1] // 2


def skill_rows(steps: Steps, image_size: int) -> Iterator[Row]:
    labels = skill_labels(steps)
    upcoming = next_index(steps, lambda step: bool(step.events))
    for run in _runs([(label.sentence, upcoming[i]) for i, label in enumerate(labels)]):
        yield from _segment_rows(steps, run, lambda i, k: (skill_command(labels[i].sentence), None))


def next_index(steps: Steps, holds) -> list[int | None]:
    """Per step, the index (its `step`) of the first step at or after it for which `holds` is true."""
    return [None if then is None else then.step for then in next_where(steps, holds)]


EXAMPLES_OF: dict[str, Callable[[Steps, int], Iterator[Row]]] = {
    "motion": motion_rows, "grounding": grounding_rows, "skill": skill_rows}
