"""The scripted expert agent: turns a task's success predicate into behaviours, with reflexes."""

from __future__ import annotations

from crafter import objects

from crossagent.actions import behaviours as b
from crossagent.actions.executor import Executor, Stop, done, failed
from crossagent.envs.crafter_env import Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.tasks.predicates import Achieve, AllOf, Gain, Predicate, Reach, Survive
from crossagent.tasks.task import Task

MAX_REPLANS = 8
NEED_THRESHOLD = 2  # drink/food at or below this (energy one below) interrupts the plan


def plan_for(state: PrivilegedState, goal: Predicate) -> Executor:
    """The behaviour that makes `goal` true from the current state."""
    if isinstance(goal, Gain):
        return b.obtain(state, goal.item, state.inventory[goal.item] + goal.amount)
    if isinstance(goal, Achieve):
        return achieve(state, goal.name, goal.count)
    if isinstance(goal, Reach):
        targets = b.cells_of(state, goal.material)
        return b.go_to(state, b.adjacent_to(targets), goal.material)
    if isinstance(goal, Survive):
        return b.survive(state, goal.steps)
    if isinstance(goal, AllOf):
        return all_of(state, goal.parts)
    raise ValueError(f"the expert has no plan for {goal!r}")


def achieve(state: PrivilegedState, name: str, count: int = 1) -> Executor:
    target = state.achievements[name] + count
    for _ in range(count + 2):
        if state.achievements[name] >= target:
            return done()
        kind, _, what = name.partition("_")
        if name.startswith("defeat_"):
            return (yield from b.defeat(state, what, target - state.achievements[name]))
        if name == "eat_cow":
            return (yield from b.defeat(state, "cow", target - state.achievements[name]))
        if name == "wake_up":
            outcome = yield from b.sleep_until_rested(state)
        elif name == "eat_plant":
            outcome = yield from eat_plant(state)
        elif name == "collect_drink":
            outcome = yield from b.collect(state, "water")
        elif kind == "collect":
            outcome = yield from b.obtain(state, what, state.inventory[what] + 1)
        elif kind == "place":
            outcome = done()
            for item, n in b.PLACE[what]["uses"].items():
                outcome = yield from b.obtain(state, item, n)
                if not outcome.ok:
                    break
            if outcome.ok:
                outcome = yield from b.place(state, what)
        elif kind == "make":
            outcome = yield from b.make_with_prerequisites(state, what)
        else:
            return failed(f"the expert has no plan for achievement {name}")
        if not outcome.ok:
            return outcome
    return done() if state.achievements[name] >= target else failed(f"{name} not achieved")


def eat_plant(state: PrivilegedState) -> Executor:
    """Plant a sapling, guard it until ripe, eat it."""
    plants = [p for p in state.world.objects if isinstance(p, objects.Plant)]
    if not plants:
        outcome = yield from achieve(state, "place_plant")
        if not outcome.ok:
            return outcome
        plants = [p for p in state.world.objects if isinstance(p, objects.Plant)]
    plant = min(plants, key=lambda p: state.player.distance(p))
    cell = (int(plant.pos[0]), int(plant.pos[1]))
    for _ in range(800):
        if plant.removed:
            return failed("the plant was destroyed")
        if plant.ripe:
            outcome = yield from b.go_to(state, b.adjacent_to({cell}), "the plant")
            if not outcome.ok:
                return outcome
            yield from b.face(state, cell)
            yield b.DO
            return done()
        threats = b.hostiles_within(state, 3)
        yield b.next_attack_action(state, threats) if threats else b.NOOP
    return failed("the plant did not ripen")


def all_of(state: PrivilegedState, parts: tuple[Predicate, ...]) -> Executor:
    """Pursue each part in turn; a part that fails is skipped so the others still get a chance."""
    last = done()
    for part in parts:
        outcome = yield from plan_for(state, part)
        if not outcome.ok:
            last = outcome
    return last


def needs_care(state: PrivilegedState) -> Executor | None:
    """A behaviour that restores a vital running out (drink, food, energy), or None."""
    if state.inventory["drink"] <= NEED_THRESHOLD and b.cells_of(state, "water"):
        return b.collect(state, "water")
    if state.inventory["food"] <= NEED_THRESHOLD and state.mobs(objects.Cow):
        return b.defeat(state, "cow", wait_steps=0)
    if state.inventory["energy"] <= NEED_THRESHOLD - 1:
        return b.sleep_until_rested(state)
    return None


class ExpertAgent:
    """Reads the privileged state. Reflexes first (hit an adjacent zombie, restore a vital that
    runs out), then the task's plan."""

    name = "expert"
    uses_privileged_state = True
    needs_image = False
    needs_text = False

    def __init__(self) -> None:
        self._task: Task | None = None
        self._plan: Executor | None = None
        self._care: Executor | None = None
        self._replans = 0
        self.last_outcome: Stop | None = None

    def reset(self, task: Task, seed: int) -> None:
        self._task = task
        self._plan = None
        self._care = None
        self._replans = 0
        self.last_outcome = None

    def act(self, observation: Observation, state: PrivilegedState | None) -> int:
        if state is None or self._task is None:
            raise RuntimeError("the expert needs reset() and the privileged state")
        zombies = {(int(z.pos[0]), int(z.pos[1])) for z in state.mobs(objects.Zombie)
                   if state.player.distance(z) <= 1}
        if zombies and not state.sleeping:
            return b.next_attack_action(state, zombies)
        if self._care is None:
            self._care = needs_care(state)
        if self._care is not None:
            try:
                return next(self._care)
            except StopIteration:
                self._care = None
        while self._replans <= MAX_REPLANS:
            if self._plan is None:
                self._plan = plan_for(state, self._task.success)
                self._replans += 1
            try:
                return next(self._plan)
            except StopIteration as stop:
                self.last_outcome = stop.value
                self._plan = None
        return b.NOOP
