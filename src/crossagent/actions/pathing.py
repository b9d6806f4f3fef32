"""Shortest paths on the Crafter grid for the expert and the executors.

Walkable, free cells cost 1. A cell the player can clear by hand or with a tool it holds
(tree, stone, coal, iron, diamond) costs 3: face it, `do`, then step in. A cell with a mob
costs 4 (it may move away, or be fought). Water, lava, tables and furnaces are walls.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import crafter
from crafter import objects

from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.privileged_state import PrivilegedState

Cell = tuple[int, int]
# Step (dx, dy) -> the move action that takes it, in the vocabulary's order (paths try neighbours so).
DIRECTIONS: dict[Cell, int] = {step: ACTION_NAMES.index(f"move_{name}") for name, step in VOCABULARY.directions.items()}
WALKABLE = frozenset(crafter.constants.walkable)
CLEARABLE_COST = 3
MOB_COST = 4


def neighbours(cell: Cell) -> list[Cell]:
    return [(cell[0] + dx, cell[1] + dy) for dx, dy in DIRECTIONS]


def can_collect(state: PrivilegedState, material: str | None) -> bool:
    """True if `do` on this material gives something now (tool requirements met)."""
    rule = crafter.constants.collect.get(material)
    if rule is None:
        return False
    return all(state.inventory[tool] >= amount for tool, amount in rule["require"].items())


def step_cost(state: PrivilegedState, cell: Cell, allow_clearing: bool = True) -> int | None:
    """Cost of entering `cell`, or None if it cannot be entered."""
    material, obj = state.world[cell]
    if material is None:
        return None
    if obj is not None and not isinstance(obj, objects.Player):
        if isinstance(obj, (objects.Plant, objects.Fence)) or material not in WALKABLE:
            return None
        return MOB_COST
    if material in WALKABLE:
        return 1
    leaves = crafter.constants.collect.get(material, {}).get("leaves")
    if allow_clearing and leaves in WALKABLE and material != "grass" and can_collect(state, material):
        return CLEARABLE_COST
    return None


def shortest_path(state: PrivilegedState, is_goal: Callable[[Cell], bool], max_cost: int = 400,
                  allow_clearing: bool = True) -> list[Cell] | None:
    """Cells from the player (excluded) to the nearest goal cell (included); [] if already there."""
    start = state.position
    if is_goal(start):
        return []
    best = {start: 0}
    parent: dict[Cell, Cell] = {}
    frontier = [(0, start)]
    while frontier:
        cost, cell = heapq.heappop(frontier)
        if cost > best.get(cell, cost):
            continue
        if cell != start and is_goal(cell):
            path = [cell]
            while path[-1] in parent and parent[path[-1]] != start:
                path.append(parent[path[-1]])
            return path[::-1]
        for nxt in neighbours(cell):
            step = step_cost(state, nxt, allow_clearing)
            if step is None:
                continue
            new_cost = cost + step
            if new_cost <= max_cost and new_cost < best.get(nxt, max_cost + 1):
                best[nxt] = new_cost
                parent[nxt] = cell
                heapq.heappush(frontier, (new_cost, nxt))
    return None


def direction_to(src: Cell, dst: Cell) -> Cell:
    return dst[0] - src[0], dst[1] - src[1]


def move_action(src: Cell, dst: Cell) -> int:
    """The move action from `src` toward the 4-adjacent `dst` (turns if `dst` is blocked)."""
    return DIRECTIONS[direction_to(src, dst)]


def adjacent_to(targets: set[Cell]) -> Callable[[Cell], bool]:
    return lambda cell: any(n in targets for n in neighbours(cell))
