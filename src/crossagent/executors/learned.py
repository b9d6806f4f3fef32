"""Learned executors: a trained ExecutorPolicy runs an abstract action of its level, one primitive
action per step, until it says done (or its step cap).

Actions are sampled from the policy, not taken greedily: greedy, a memoryless policy that sees no target
(a skill whose tree is out of view) walks one straight line or repeats a failing action until its cap.
Measured on the mini suite x 3 (8-epoch checkpoints), the gain is within the spread of sampling seeds:
skill 66.7 % greedy, 78.9 % and 65.6 % sampled under two seedings; grounding 85.6 %, 84.4 % and 85.6 %.

It reads the player's observation only: each step it renders the text view (envs.text_view.render_text,
exactly what a text-reading policy is shown) and parses it back; the state object is never read
otherwise. A grounding target is followed on the view, as the paper's grounding policy follows its
target mask between frames: by the player's own moves (a move goes through when the cell ahead shows a
walkable symbol) and, for a creature, by the nearest creature of its kind next to where it was.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import torch

from crossagent.actions.executor import Executor, Stop, done
from crossagent.actions.grounding import Grounding
from crossagent.actions.motion import MAX_REPEAT, Motion
from crossagent.actions.skill import Skill
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.envs.text_view import LOCAL_VIEW, render_text
from crossagent.envs.view_geometry import view_slot_at_point
from crossagent.executors.features import (Offset, grounding_command, motion_command, skill_command,
                                           step_input)
from crossagent.executors.observation import CENTRE, WALKABLE, View, parse_view
from crossagent.executors.policy import ExecutorPolicy

# Steps one call may take at most, as the oracle's look-ahead horizon per level (agents.oracle.HORIZON).
STEP_CAP = {"motion": MAX_REPEAT, "grounding": 80, "skill": 200}
TRACK_RADIUS = 2  # a creature target is looked for this far (Manhattan) from where it was
MOB_SYMBOLS = {name: VOCABULARY.text_view.object_symbols[VOCABULARY.objects[name]] for name in VOCABULARY.mobs}


def offset_of_point(point: tuple[int, int] | None, image_size: int) -> Offset | None:
    """Where a point on the image lies relative to the player, None for no point or outside the view."""
    slot = None if point is None else view_slot_at_point(point, image_size)
    return None if slot is None else (slot[0] - CENTRE[0], slot[1] - CENTRE[1])


def move_of(action: int, view: View) -> Offset | None:
    """The step the player makes with `action` from `view`: None unless a move onto a walkable cell."""
    name = ACTION_NAMES[action]
    if not name.startswith("move_"):
        return None
    dx, dy = VOCABULARY.directions[name.removeprefix("move_")]
    return (dx, dy) if view.symbol(CENTRE[0] + dx, CENTRE[1] + dy) in WALKABLE else None


class TargetTracker:
    """The grounding target's offset from the player, kept up to date from the views."""

    def __init__(self, offset: Offset | None, label: str | None):
        self.offset = offset
        self.symbol = MOB_SYMBOLS.get(label or "")

    def observe(self, view: View) -> None:
        if self.offset is None or self.symbol is None:
            return
        near = [(column - CENTRE[0], row - CENTRE[1]) for row in range(LOCAL_VIEW[1]) for column in range(LOCAL_VIEW[0])
                if view.symbol(column, row) == self.symbol
                and abs(column - CENTRE[0] - self.offset[0]) + abs(row - CENTRE[1] - self.offset[1]) <= TRACK_RADIUS]
        if near:
            self.offset = min(near, key=lambda o: abs(o[0] - self.offset[0]) + abs(o[1] - self.offset[1]))

    def acted(self, action: int, view: View) -> None:
        step = move_of(action, view)
        if self.offset is not None and step is not None:
            self.offset = (self.offset[0] - step[0], self.offset[1] - step[1])


class LearnedExecutor:
    """`execute` has the scripted executors' signature (actions.<level>.execute)."""

    def __init__(self, policy: ExecutorPolicy):
        self.policy = policy
        self.level = policy.config.level

    def execute(self, action: Motion | Grounding | Skill, state: PrivilegedState, image_size: int) -> Executor:
        command, tracker = self._command(action, image_size)
        history: list[int] = []
        generator: torch.Generator | None = None
        for steps in range(STEP_CAP[self.level]):
            text = render_text(state)
            view = parse_view(text)
            if generator is None:  # seeded by what the call starts from, so an episode replays the same
                generator = torch.Generator().manual_seed(zlib.crc32(f"{text}\n{action}".encode()))
            tracker.observe(view)
            chosen, finished = self.policy.act(step_input(view, command(steps, tracker.offset), tracker.offset,
                                                          history, steps), generator)
            yield chosen
            tracker.acted(chosen, view)
            history.append(chosen)
            if finished:
                return done(f"the learned {self.level} executor is done after {steps + 1} steps")
        return Stop("budget", f"the learned {self.level} executor took its {STEP_CAP[self.level]} steps")

    def _command(self, action, image_size: int) -> tuple[Callable[[int, Offset | None], list[float]], TargetTracker]:
        """The command vector at a step (from the steps taken and the target's offset), and the tracker."""
        if self.level == "motion":
            return lambda steps, _: motion_command(action.action, action.count - steps), TargetTracker(None, None)
        if self.level == "grounding":
            tracker = TargetTracker(offset_of_point(action.point, image_size), action.label)
            return lambda steps, offset: grounding_command(action.verb, action.label, offset), tracker
        return lambda steps, _: skill_command(action.sentence), TargetTracker(None, None)
