"""Programmatic labels for every action level, from one recorded primitive trajectory.

Each function takes an episode's steps (in order) and returns one action per step: what that
level would have said at that step for the agent to do what it did next.
- raw:       the step's action.
- motion:    the step's action repeated while the next steps repeat it. A blocked move is a run of
             its own (a turn, which the motion executor completes with count 1); a run never goes
             through one, since the executor stops a longer motion there as failed. Capped at
             motion.MAX_REPEAT.
- grounding: the next interaction (`do`, place_*, make_*) at or after the step, with the grounding
             oracle's verb, pointed on this step's image (a creature where it is at this step).
             Out of view: `explore` (`no-op` on a no-op step). A `do` that faces neither a creature nor
             something collectable (a zombie that just stepped away) is no target: its label would
             fail in the grounding executor.
- skill:     the skill sentence of the next achievement event at or after the step, `explore` if none.
- latent:    the code of the chunk of actions that starts at the step, from a learned codebook's encoder
             (executors.latent_model); not in `label_episode`, which needs no learned model.
"""

from __future__ import annotations

from collections.abc import Sequence

import crafter

from crossagent.actions import grounding, latent, motion, raw, skill
from crossagent.agents.oracle import INTERACTIONS, interaction_verb, sentence_of_event
from crossagent.data.recording import Cell, StepRecord
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.view_geometry import point_of_cell

Steps = Sequence[StepRecord]
COLLECTABLE = frozenset(crafter.constants.collect)  # materials a `do` collects from (water: drink)


def raw_labels(steps: Steps) -> list[raw.RawAction]:
    return [raw.RawAction(step.action) for step in steps]


def motion_labels(steps: Steps) -> list[motion.Motion]:
    runs = [1] * len(steps)
    for i in range(len(steps) - 2, -1, -1):  # backwards: a step's run is the next step's run plus one
        now, after = steps[i], steps[i + 1]
        if after.action == now.action and not now.blocked and not after.blocked:
            runs[i] = runs[i + 1] + 1
    return [motion.Motion(step.action, min(run, motion.MAX_REPEAT)) for step, run in zip(steps, runs)]


def grounding_labels(steps: Steps, image_size: int) -> list[grounding.Grounding]:
    labels = []
    for now, then in zip(steps, next_where(steps, is_interaction)):
        target = _target(now, then) if then is not None else None
        point = point_of_cell(now.position, target[1], image_size) if target else None
        if point is not None:
            labels.append(grounding.Grounding(target[0], point, target[2]))
        else:
            labels.append(grounding.Grounding("no-op" if now.action == "noop" else "explore"))
    return labels


def skill_labels(steps: Steps) -> list[skill.Skill]:
    labels = []
    for then in next_where(steps, lambda step: bool(step.events)):
        # As the skill oracle: the first event of that step that names a skill, else explore.
        known = [s for s in (sentence_of_event(e) for e in then.events) if s] if then is not None else []
        labels.append(skill.Skill(known[0] if known else "explore"))
    return labels


def latent_labels(steps: Steps, encoder) -> list[latent.Latent]:
    """`encoder`: executors.latent_model.LatentModel (its `label` codes the chunk at every step)."""
    codes = encoder.label([ACTION_NAMES.index(step.action) for step in steps], [step.text for step in steps])
    return [latent.Latent(code) for code in codes]


def label_episode(steps: Steps, image_size: int) -> list[dict[str, object]]:
    """Per step, level -> its action (raw.RawAction, motion.Motion, grounding.Grounding, skill.Skill)."""
    columns = {"raw": raw_labels(steps), "motion": motion_labels(steps),
               "grounding": grounding_labels(steps, image_size), "skill": skill_labels(steps)}
    return [{level: labels[i] for level, labels in columns.items()} for i in range(len(steps))]


def is_interaction(step: StepRecord) -> bool:
    if step.action == "do":
        return step.facing_creature is not None or step.facing_material in COLLECTABLE
    return step.action in INTERACTIONS


def next_where(steps: Steps, holds) -> list[StepRecord | None]:
    """Per step, the first step at or after it for which `holds` is true (None if none)."""
    found: list[StepRecord | None] = [None] * len(steps)
    upcoming = None
    for i in range(len(steps) - 1, -1, -1):
        if holds(steps[i]):
            upcoming = steps[i]
        found[i] = upcoming
    return found


def _target(now: StepRecord, then: StepRecord) -> tuple[str, Cell, str | None] | None:
    """(verb, cell at `now`, label) of the interaction made at step `then`; None if it has no cell now."""
    verb = interaction_verb(then.action, then.facing_material, then.facing_creature)
    if then.action.startswith("make_"):
        return (verb, then.station, "table") if then.station is not None else None
    if then.facing_creature is not None and not then.action.startswith("place_"):
        creature = now.creature(then.facing_creature_id)  # moving targets: where it is now
        return (verb, creature.cell, creature.kind) if creature is not None else None
    return verb, then.facing_cell, then.facing_material
