"""Oracle policies: the expert decides, the reply speaks only one level (the HA ceiling table).

Each call simulates a fresh expert on a copy of the game (`look_ahead`) and describes what
it does next in the level's words:
- raw:       its next primitive action.
- motion:    its next action and how many times in a row it repeats it.
- grounding: the next thing it acts on (collect, drink, attack, eat, place, make) as a point on
             the current image; if that is out of view, the farthest cell of its path still in
             view to approach; `explore` if it goes nowhere visible.
- skill:     the next achievement or inventory gain it makes, as a skill sentence.
- latent:    its next chunk of primitive actions, encoded into a code by the latent codebook's encoder
             (executors.latent_model); the latent executor decodes it from the view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crossagent.actions import grounding, latent, motion, raw, skill
from crossagent.actions.levels import LEVELS
from crossagent.agents.base import ReplyDecision
from crossagent.agents.expert import ExpertAgent
from crossagent.envs.crafter_env import ACTION_NAMES, Observation
from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.crafter_world import DeterministicCrafter
from crossagent.envs.privileged_state import PrivilegedState, Progress
from crossagent.envs.text_view import render_text
from crossagent.envs.view_geometry import point_of_cell
from crossagent.tasks.predicates import Achieve, AllOf, Gain, Predicate
from crossagent.tasks.task import Task

HORIZON = {"raw": 1, "motion": motion.MAX_REPEAT, "grounding": 80, "skill": 200}
INTERACTIONS = {"do"} | {name for name in ACTION_NAMES if name.startswith(("place_", "make_"))}
CREATURES = tuple(VOCABULARY.objects[name] for name in VOCABULARY.creatures)  # what attack/eat act on


@dataclass
class Step:
    """One simulated expert step: where it stood and faced, what it did, where it ended, what it unlocked."""

    position: tuple[int, int]
    facing_cell: tuple[int, int]
    action: str
    arrived: tuple[int, int]
    events: list[str] = field(default_factory=list)

    @property
    def moved(self) -> bool:
        return self.arrived != self.position


def sentence_of_event(event: str) -> str | None:
    """The skill that an achievement event completes, if any."""
    return VOCABULARY.skill.of_achievement.get(event)


def interaction_verb(action: str, material: str | None = None, creature: str | None = None) -> str:
    """The grounding verb of an interaction `action` on a cell showing `material` or `creature`."""
    if action.startswith("place_"):
        return f"place {action.removeprefix('place_')}"
    if action.startswith("make_"):
        return f"make {action.removeprefix('make_').replace('_', ' ')}"
    if creature is not None:
        return VOCABULARY.creatures[creature][0]
    return VOCABULARY.grounding.collect_verbs.get(material, "collect")


def creature_name(obj) -> str | None:
    """The name of a creature the player can attack or eat, None for anything else."""
    return VOCABULARY.object_names[type(obj)] if isinstance(obj, CREATURES) else None


def creature_near(state: PrivilegedState, cell: tuple[int, int]):
    """The creature the expert hits there: the one now at that cell, else the nearest to it."""
    obj = state.object_at(cell)
    if isinstance(obj, CREATURES):
        return obj
    mobs = [m for m in state.mobs() if abs(m.pos[0] - cell[0]) + abs(m.pos[1] - cell[1]) <= 2]
    return min(mobs, key=lambda m: abs(m.pos[0] - cell[0]) + abs(m.pos[1] - cell[1])) if mobs else None


def nearest_station(state: PrivilegedState, cell: tuple[int, int]) -> tuple[int, int] | None:
    """A table within reach of `cell` (the 3x3 around it), where the expert makes things."""
    around = [(cell[0] + dx, cell[1] + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    tables = [c for c in around if state.material(c) == "table"]
    return tables[0] if tables else None


def remaining_goal(goal: Predicate, start: Progress, now: Progress, state: PrivilegedState) -> Predicate | None:
    """What is left of `goal` since the episode's start (None if nothing), for a fresh planner."""
    if isinstance(goal, Gain):
        left = goal.amount - (now.inventory[goal.item] - start.inventory[goal.item])
        return Gain(goal.item, left) if left > 0 else None
    if isinstance(goal, Achieve):
        left = goal.count - (now.achievements[goal.name] - start.achievements[goal.name])
        return Achieve(goal.name, left) if left > 0 else None
    if isinstance(goal, AllOf):
        parts = tuple(p for p in (remaining_goal(part, start, now, state) for part in goal.parts) if p is not None)
        return AllOf(parts) if parts else None
    return None if goal.check(start, now, state) else goal


class OraclePolicy:
    uses_privileged_state = True
    needs_image = False
    needs_text = False

    def __init__(self, level: str, image_size: int = 64, encoder=None):
        """`encoder`: for the latent level, what turns a chunk of actions into its code (executors.latent's
        LatentExecutor: `code_of(actions)` and its model's chunk length)."""
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r} (known: {', '.join(LEVELS)})")
        if (level == latent.NAME) != (encoder is not None):
            raise ValueError("the latent oracle needs the latent encoder, and only it does")
        self.level = level
        self.encoder = encoder
        self.name = f"oracle:{level}"
        self.image_size = image_size
        self._scratch = DeterministicCrafter(image_size=image_size)
        self._task: Task | None = None
        self._start: Progress | None = None

    def reset(self, task: Task, seed: int) -> None:
        self._task = task
        self._start = None

    def reply(self, observation: Observation, state: PrivilegedState | None) -> ReplyDecision:
        """Scripted: returns the reply at once, never asking a model."""
        yield from ()
        return self.write(observation, state)

    def write(self, observation: Observation, state: PrivilegedState | None) -> str:
        if state is None or self._task is None:
            raise RuntimeError("an oracle needs reset() and the privileged state")
        if self._start is None:
            self._start = state.progress()
        goal = remaining_goal(self._task.success, self._start, state.progress(), state) or self._task.success
        horizon = self.encoder.model.config.chunk if self.level == latent.NAME else HORIZON[self.level]
        steps = self.look_ahead(state, goal, horizon)
        if not steps:
            return "Action: noop" if self.level == "raw" else self._describe_idle(state)
        return getattr(self, f"_{self.level}")(state, steps)

    def look_ahead(self, state: PrivilegedState, goal: Predicate, horizon: int) -> list[Step]:
        """Run a fresh expert on a copy of the game until `horizon` steps, the goal, or death."""
        sim = state.copy_into(self._scratch)
        expert = ExpertAgent()
        expert.reset(Task("look-ahead", "embodied", "", ("", ""), 0, self._task.start, horizon, goal), 0)
        start = sim.progress()
        steps: list[Step] = []
        for _ in range(horizon):
            before = sim.progress()
            position, facing = sim.position, sim.facing_cell
            action = ACTION_NAMES[expert.act(None, sim)]
            self._scratch.step(ACTION_NAMES.index(action))
            after = sim.progress()
            events = [name for name, count in after.achievements.items() if count > before.achievements[name]]
            steps.append(Step(position, facing, action, sim.position, events))
            if self._stop_looking(steps) or goal.check(start, after, sim) or sim.player.health <= 0:
                break
        return steps

    def _stop_looking(self, steps: list[Step]) -> bool:
        last = steps[-1]
        if self.level == "motion":
            return last.action != steps[0].action or (last.action.startswith("move_") and not last.moved)
        if self.level == "grounding":
            return last.action in INTERACTIONS
        if self.level == "skill":
            return bool(last.events)
        return self.level != latent.NAME  # a latent chunk runs to its horizon (the chunk's length)

    # --- one method per level ---------------------------------------------------------------
    def _latent(self, state: PrivilegedState, steps: list[Step]) -> str:
        code = self.encoder.code_of([ACTION_NAMES.index(step.action) for step in steps], render_text(state))
        return latent.to_text(latent.Latent(code))

    def _raw(self, state: PrivilegedState, steps: list[Step]) -> str:
        return raw.to_text(raw.RawAction(steps[0].action))

    def _motion(self, state: PrivilegedState, steps: list[Step]) -> str:
        first = steps[0].action
        count = 0
        for step in steps:
            if step.action != first:
                break
            count += 1
            if first.startswith("move_") and not step.moved:
                break
        return motion.to_text(motion.Motion(first, min(count, motion.MAX_REPEAT)))

    def _grounding(self, state: PrivilegedState, steps: list[Step]) -> str:
        last = steps[-1]
        if last.action in INTERACTIONS:
            target = self._interaction_target(state, last)
            point = point_of_cell(state.position, target[1], self.image_size) if target else None
            if point is not None:
                return grounding.to_text(grounding.Grounding(target[0], point, grounding.label_of(state, target[1])))
        path = [s.arrived for s in steps]
        visible = [cell for cell in path if point_of_cell(state.position, cell, self.image_size) is not None]
        if visible and visible[-1] != state.position:
            cell = visible[-1]
            return grounding.to_text(grounding.Grounding(
                "approach", point_of_cell(state.position, cell, self.image_size), grounding.label_of(state, cell)))
        if steps[0].action == "noop":
            return grounding.to_text(grounding.Grounding("no-op"))
        return grounding.to_text(grounding.Grounding("explore"))

    def _interaction_target(self, state: PrivilegedState, step: Step) -> tuple[str, tuple[int, int]] | None:
        """(verb, cell) of the expert's interaction, judged on the current world."""
        if step.action.startswith("place_"):
            return interaction_verb(step.action), step.facing_cell
        if step.action.startswith("make_"):
            station = nearest_station(state, step.position)
            return (interaction_verb(step.action), station) if station else None
        creature = creature_near(state, step.facing_cell)
        if creature is not None:
            cell = (int(creature.pos[0]), int(creature.pos[1]))
            return interaction_verb(step.action, creature=creature_name(creature)), cell
        return interaction_verb(step.action, material=state.material(step.facing_cell)), step.facing_cell

    def _skill(self, state: PrivilegedState, steps: list[Step]) -> str:
        sentences = [sentence_of_event(event) for event in steps[-1].events]
        known = [sentence for sentence in sentences if sentence is not None]
        return skill.to_text(skill.Skill(known[0] if known else "explore"))

    def _describe_idle(self, state: PrivilegedState) -> str:
        if self.level == latent.NAME:
            return latent.to_text(latent.Latent(self.encoder.code_of([ACTION_NAMES.index("noop")], render_text(state))))
        return {"motion": "Motion: wait", "grounding": "Grounding: no-op", "skill": "Skill: explore"}[self.level]
