"""Reusable behaviours: generators that yield primitive actions and return a Stop (actions.executor).

Each behaviour re-reads the live privileged state at every step, so it can be paused,
interleaved with a reflex (fighting a zombie that walked up) and resumed. The scripted expert
(agents.expert) and the grounding and skill executors compose the same pieces; they live
here, below both, so that actions never imports agents.
"""

from __future__ import annotations

from collections.abc import Callable

import crafter
from crafter import objects

from crossagent.actions.executor import Executor, done, failed
from crossagent.actions.pathing import (
    DIRECTIONS,
    WALKABLE,
    Cell,
    adjacent_to,
    move_action,
    neighbours,
    shortest_path,
    step_cost,
)
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.privileged_state import PrivilegedState

NOOP = ACTION_NAMES.index("noop")
DO = ACTION_NAMES.index("do")
SLEEP = ACTION_NAMES.index("sleep")
COLLECT = crafter.constants.collect
PLACE = crafter.constants.place
MAKE = crafter.constants.make
# Which material to `do` on to receive an item (wood from trees, drink from water ...).
SOURCE_OF = {item: material for material, rule in COLLECT.items() for item in rule["receive"]}
STATION_SEARCH_COST = 24  # a station further than this (path cost) is cheaper to rebuild


def cells_of(state: PrivilegedState, material: str) -> set[Cell]:
    mat_id = state.world._mat_ids.get(material)
    if mat_id is None:
        return set()
    xs, ys = (state.world._mat_map == mat_id).nonzero()
    return {(int(x), int(y)) for x, y in zip(xs, ys)}


# --- moving and facing ----------------------------------------------------------------------
def go_to(state: PrivilegedState, is_goal: Callable[[Cell], bool], what: str, max_steps: int = 300) -> Executor:
    """Walk (clearing trees/rock on the way when the tools allow) until standing on a goal cell."""
    for _ in range(max_steps):
        path = shortest_path(state, is_goal)
        if path is None:
            return failed(f"no path to {what}")
        if not path:
            return done()
        yield step_along(state, path[0])
    return failed(f"did not reach {what} in {max_steps} steps")


def step_along(state: PrivilegedState, nxt: Cell) -> int:
    """Enter the next path cell, or clear/fight what stands in it first."""
    material, obj = state.world[nxt]
    enterable = material in WALKABLE and obj is None
    if enterable or state.facing_cell != nxt:
        return move_action(state.position, nxt)
    return DO


def face(state: PrivilegedState, target: Cell) -> Executor:
    """Turn toward a 4-adjacent, non-enterable cell (a move into a blocked cell only turns)."""
    if state.facing_cell != target:
        yield move_action(state.position, target)
    return done() if state.facing_cell == target else failed("could not face the target")


def face_open_cell(state: PrivilegedState, is_valid: Callable[[Cell], bool], what: str, max_steps: int = 40) -> Executor:
    """Face a cell satisfying `is_valid`, also when that cell is walkable (placing, sapling picking).

    Moving into a free cell walks instead of turning, so we may step once and then face the
    cell beyond it.
    """
    for _ in range(max_steps):
        if is_valid(state.facing_cell):
            return done()
        pos = state.position
        turn = [d for d in DIRECTIONS if is_valid(_add(pos, d)) and not _enterable(state, _add(pos, d))]
        walk = [d for d in DIRECTIONS if _enterable(state, _add(pos, d)) and is_valid(_add(pos, d, 2))]
        if turn or walk:
            yield DIRECTIONS[(turn or walk)[0]]
            continue
        path = shortest_path(state, lambda c: any(
            is_valid(_add(c, d)) and (not _enterable(state, _add(c, d)) or is_valid(_add(c, d, 2))) for d in DIRECTIONS))
        if not path:
            return failed(f"no place to face {what}")
        yield step_along(state, path[0])
    return failed(f"could not face {what} in {max_steps} steps")


def _add(cell: Cell, d: Cell, times: int = 1) -> Cell:
    return cell[0] + times * d[0], cell[1] + times * d[1]


def _enterable(state: PrivilegedState, cell: Cell) -> bool:
    return step_cost(state, cell, allow_clearing=False) == 1


# --- gathering ------------------------------------------------------------------------------
def collect(state: PrivilegedState, material: str, max_steps: int = 400) -> Executor:
    """`do` on the nearest `material` until it yields once (a drink, a wood, a sapling ...)."""
    rule = COLLECT[material]
    missing = [tool for tool, n in rule["require"].items() if state.inventory[tool] < n]
    if missing:
        return failed(f"collecting {material} needs {', '.join(missing)}")
    achievement = f"collect_{next(iter(rule['receive']))}"
    before = state.achievements[achievement]
    for _ in range(max_steps):
        if state.achievements[achievement] > before:
            return done()
        if material == "grass":
            outcome = yield from face_open_cell(state, lambda c: state.world[c] == ("grass", None), "grass", 1)
            if outcome.ok:
                yield DO
            elif outcome.reason.startswith("no place"):
                return outcome
            continue
        if state.material(state.facing_cell) == material and state.object_at(state.facing_cell) is None:
            yield DO
            continue
        targets = cells_of(state, material)
        if not targets:
            return failed(f"no {material} in the world")
        here = [n for n in neighbours(state.position) if n in targets]
        if here:
            yield move_action(state.position, here[0])
            continue
        path = shortest_path(state, adjacent_to(targets))
        if path is None:
            return failed(f"no path to {material}")
        yield step_along(state, path[0])
    return failed(f"did not collect {material} in {max_steps} steps")


# --- building -------------------------------------------------------------------------------
def place(state: PrivilegedState, name: str) -> Executor:
    """Place `name` (stone, table, furnace, plant) on a suitable cell in front of the player."""
    rule = PLACE[name]
    missing = [item for item, n in rule["uses"].items() if state.inventory[item] < n]
    if missing:
        return failed(f"placing {name} needs {', '.join(missing)}")
    before = state.achievements[f"place_{name}"]

    def valid(cell: Cell) -> bool:
        material, obj = state.world[cell]
        return material in rule["where"] and obj is None and cell != state.position

    for _ in range(3):
        outcome = yield from face_open_cell(state, valid, f"a cell to place {name}")
        if not outcome.ok:
            return outcome
        yield ACTION_NAMES.index(f"place_{name}")
        if state.achievements[f"place_{name}"] > before:
            return done()
    return failed(f"placing {name} had no effect")


def stations_near(state: PrivilegedState, cell: Cell, stations: list[str]) -> bool:
    """Crafter's `nearby` test: every station within the 3x3 square around `cell`."""
    around = {state.material((cell[0] + dx, cell[1] + dy)) for dx in (-1, 0, 1) for dy in (-1, 0, 1)}
    return all(station in around for station in stations)


def make(state: PrivilegedState, item: str) -> Executor:
    """Craft `item` once, from what the inventory holds, next to the stations it needs."""
    rule = MAKE[item]
    missing = [k for k, n in rule["uses"].items() if state.inventory[k] < n]
    if missing:
        return failed(f"making {item} needs {', '.join(missing)}")
    stations = list(rule["nearby"])
    if not stations_near(state, state.position, stations):
        outcome = yield from go_to(state, lambda c: stations_near(state, c, stations), " and ".join(stations))
        if not outcome.ok:
            return outcome
    before = state.inventory[item]
    yield ACTION_NAMES.index(f"make_{item}")
    return done() if state.inventory[item] > before else failed(f"making {item} had no effect")


def obtain(state: PrivilegedState, item: str, count: int) -> Executor:
    """Hold at least `count` of `item`: collect or craft it, with every prerequisite first."""
    for _ in range(4 * count + 8):
        if state.inventory[item] >= count:
            return done()
        if item in MAKE:
            outcome = yield from make_with_prerequisites(state, item)
        elif item in SOURCE_OF:
            source = SOURCE_OF[item]
            outcome = done()
            for tool, n in COLLECT[source]["require"].items():
                outcome = yield from obtain(state, tool, n)
                if not outcome.ok:
                    break
            if outcome.ok:
                outcome = yield from collect(state, source)
        else:
            return failed(f"{item} can be neither collected nor made")
        if not outcome.ok:
            return outcome
    return failed(f"could not obtain {count} {item}")


def make_with_prerequisites(state: PrivilegedState, item: str) -> Executor:
    """Make `item` from whatever is at hand: build missing stations, gather missing ingredients."""
    rule = MAKE[item]
    stations = list(rule["nearby"])
    for _ in range(12):
        for index, station in enumerate(stations):
            outcome = yield from ensure_station(state, station, anchors=stations[:index])
            if not outcome.ok:
                return outcome
        missing = [(k, n) for k, n in rule["uses"].items() if state.inventory[k] < n]
        if missing:
            outcome = yield from obtain(state, *missing[0])
            if not outcome.ok:
                return outcome
            continue
        if shortest_path(state, lambda c: stations_near(state, c, stations), max_cost=STATION_SEARCH_COST) is None:
            continue
        return (yield from make(state, item))
    return failed(f"could not gather what {item} needs")


def ensure_station(state: PrivilegedState, station: str, anchors: list[str]) -> Executor:
    """Have `station` within reach, in one 3x3 square with the `anchors` stations; build it if not."""
    group = anchors + [station]
    if shortest_path(state, lambda c: stations_near(state, c, group), max_cost=STATION_SEARCH_COST) is not None:
        return done()
    for material, n in PLACE[station]["uses"].items():
        outcome = yield from obtain(state, material, n)
        if not outcome.ok:
            return outcome
    if anchors:
        outcome = yield from go_to(state, lambda c: stations_near(state, c, anchors), " and ".join(anchors))
        if not outcome.ok:
            return outcome
    return (yield from place(state, station))


# --- fighting, eating, resting --------------------------------------------------------------
def defeat(state: PrivilegedState, kind: str, count: int = 1, max_steps: int = 600, wait_steps: int = 60,
           retreat_health: int = 2) -> Executor:
    """Approach the nearest `kind` and hit it until `count` of them are defeated (cows are eaten)."""
    mob = VOCABULARY.mobs[kind]
    achievement = mob.achievement
    target = state.achievements[achievement] + count
    waited = 0
    for _ in range(max_steps):
        if state.achievements[achievement] >= target:
            return done()
        mobs = state.mobs(mob.object_class)
        if not mobs:
            if waited >= wait_steps:
                return failed(f"no {kind} left to defeat")
            waited += 1
            yield NOOP
            continue
        yield next_attack_action(state, {tuple(int(v) for v in m.pos) for m in mobs}, retreat_health)
    return failed(f"did not defeat {count} {kind} in {max_steps} steps")


def next_attack_action(state: PrivilegedState, targets: set[Cell], retreat_health: int = 0) -> int:
    """One step of a fight: hit a target in front, turn to an adjacent one, or close in."""
    if state.facing_cell in targets:
        return DO
    adjacent = [n for n in neighbours(state.position) if n in targets]
    if adjacent:
        return move_action(state.position, adjacent[0])
    if state.player.health <= retreat_health:
        away = retreat_action(state, targets)
        if away is not None:
            return away
    path = shortest_path(state, adjacent_to(targets))
    return NOOP if not path else step_along(state, path[0])


def retreat_action(state: PrivilegedState, threats: set[Cell]) -> int | None:
    """Step to the free neighbour farthest from the threats, if that gains distance."""
    pos = state.position

    def distance(cell: Cell) -> int:
        return min(abs(cell[0] - t[0]) + abs(cell[1] - t[1]) for t in threats)

    options = [n for n in neighbours(pos) if _enterable(state, n) and distance(n) > distance(pos)]
    return move_action(pos, max(options, key=distance)) if options else None


def hostiles_within(state: PrivilegedState, distance: int) -> set[Cell]:
    px, py = state.position
    return {(int(m.pos[0]), int(m.pos[1])) for m in state.mobs(VOCABULARY.hostile_classes)
            if abs(m.pos[0] - px) + abs(m.pos[1] - py) <= distance}


def sleep_until_rested(state: PrivilegedState, max_steps: int = 400, clear_distance: int = 6) -> Executor:
    """Sleep until the game wakes the player with full energy.

    A zombie hits a sleeper for 7 instead of 2, so hostiles this close are fought first,
    also after they woke the player.
    """
    before = state.achievements["wake_up"]
    for _ in range(max_steps):
        if state.achievements["wake_up"] > before:
            return done()
        threats = hostiles_within(state, clear_distance)
        if threats and not state.sleeping:
            yield next_attack_action(state, threats)
        elif state.sleeping:
            yield NOOP
        else:
            yield SLEEP
    return failed(f"did not wake up rested in {max_steps} steps")


def survive(state: PrivilegedState, steps: int, guard_distance: int = 3) -> Executor:
    """Stay alive for `steps` steps: fight hostiles that come close, drink and eat when low."""
    end = state.step + steps
    while state.step < end:
        threats = hostiles_within(state, guard_distance)
        if threats:
            yield next_attack_action(state, threats)
        elif state.inventory["drink"] <= 4 and cells_of(state, "water"):
            yield from collect(state, "water", max_steps=min(40, end - state.step))
        elif state.inventory["food"] <= 4 and state.mobs(objects.Cow):
            yield from defeat(state, "cow", max_steps=min(40, end - state.step), wait_steps=0)
        else:
            yield NOOP
    return done()


def explore(state: PrivilegedState, distance: int = 8, max_steps: int = 40) -> Executor:
    """Walk to a reachable cell about `distance` away, in a direction that changes with time and place.

    The choice uses a hash of the position and step, never the world's RNG, so exploring does
    not change the game's future.
    """
    origin = state.position
    directions = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    first = (origin[0] * 31 + origin[1] * 17 + state.step) % len(directions)
    for turn in range(len(directions)):
        dx, dy = directions[(first + turn) % len(directions)]
        goal = (origin[0] + dx * distance, origin[1] + dy * distance)
        near = lambda c, g=goal: abs(c[0] - g[0]) + abs(c[1] - g[1]) <= distance // 2  # noqa: E731
        if shortest_path(state, near, max_cost=3 * distance) is not None:
            return (yield from go_to(state, near, "an unexplored area", max_steps))
    return failed("nowhere to explore")
