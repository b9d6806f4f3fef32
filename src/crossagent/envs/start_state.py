"""Start-state edits applied to a freshly restored world: inventory, blocks, mobs, daylight, position.

Positions are offsets (dx, dy) from the player's spawn: x grows to the right, y grows down,
as on the image. A StartState checks its edits when it is built, so every one lands inside the world.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import crafter
import numpy as np
from crafter import objects

from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.crafter_world import WORLD_AREA

MATERIALS = tuple(crafter.constants.materials)
ITEMS = tuple(crafter.constants.items)
# "dusk" keeps zombies around: in full daylight the game despawns every zombie within ~25 steps.
DAYLIGHT = {"day": 1.0, "dusk": 0.5, "night": 0.0}
SPAWN = (WORLD_AREA[0] // 2, WORLD_AREA[1] // 2)  # DeterministicCrafter puts the player at the centre


def is_int(value: object) -> bool:
    """An integer, not a bool: JSON's `true` is no count, offset or seed."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Block:
    material: str
    dx: int
    dy: int


@dataclass(frozen=True)
class Mob:
    kind: str
    dx: int
    dy: int


@dataclass(frozen=True)
class StartState:
    inventory: dict[str, int] = field(default_factory=dict)
    blocks: tuple[Block, ...] = ()
    mobs: tuple[Mob, ...] = ()
    daylight: str | None = None  # "day", "dusk", "night" or None for the normal day cycle
    player_offset: tuple[int, int] = (0, 0)
    clear_hostiles_within: int = 0  # remove zombies/skeletons this close (Manhattan) at the start

    def __post_init__(self) -> None:
        for name, amount in self.inventory.items():
            if name not in ITEMS:
                raise ValueError(f"start.inventory: unknown item {name!r} (known: {', '.join(ITEMS)})")
            limit = crafter.constants.items[name]["max"]
            if not is_int(amount) or not 0 <= amount <= limit:
                raise ValueError(f"start.inventory.{name}: {amount!r} is not an integer in 0..{limit}")
        offset = self.player_offset
        if not (isinstance(offset, tuple) and len(offset) == 2):
            raise ValueError(f"start.player_offset: expected (dx, dy), got {offset!r}")
        _check_cell("player_offset", "the player", *offset)
        for block in self.blocks:
            if block.material not in MATERIALS:
                raise ValueError(f"start.blocks: unknown material {block.material!r} (known: {', '.join(MATERIALS)})")
            _check_cell("blocks", block.material, block.dx, block.dy)
            if (block.dx, block.dy) == offset:
                raise ValueError(f"start.blocks: {block.material} at ({block.dx}, {block.dy}) is the player's cell")
        for mob in self.mobs:
            if not isinstance(mob.kind, str) or mob.kind not in VOCABULARY.mobs:
                raise ValueError(f"start.mobs: unknown mob {mob.kind!r} (known: {', '.join(VOCABULARY.mobs)})")
            _check_cell("mobs", mob.kind, mob.dx, mob.dy)
            if (mob.dx, mob.dy) == offset:
                raise ValueError(f"start.mobs: {mob.kind} at ({mob.dx}, {mob.dy}) is the player's cell")
        if self.daylight is not None and (not isinstance(self.daylight, str) or self.daylight not in DAYLIGHT):
            raise ValueError(f"start.daylight: {self.daylight!r} is not one of {', '.join(DAYLIGHT)} or null")
        within = self.clear_hostiles_within
        if not is_int(within) or within < 0:
            raise ValueError(f"start.clear_hostiles_within: {within!r} is not a non-negative integer")

    @property
    def fixed_daylight(self) -> float | None:
        return None if self.daylight is None else DAYLIGHT[self.daylight]

    def to_dict(self) -> dict:
        return {
            "inventory": dict(self.inventory),
            "blocks": [[b.material, b.dx, b.dy] for b in self.blocks],
            "mobs": [[m.kind, m.dx, m.dy] for m in self.mobs],
            "daylight": self.daylight,
            "player_offset": list(self.player_offset),
            "clear_hostiles_within": self.clear_hostiles_within,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "StartState":
        """Build from JSON lists and objects; the dataclass checks the values."""
        known = {"inventory", "blocks", "mobs", "daylight", "player_offset", "clear_hostiles_within"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"start: unknown field(s) {', '.join(sorted(unknown))}")
        inventory = data.get("inventory", {})
        if not isinstance(inventory, dict):
            raise ValueError(f"start.inventory: expected an object of item: amount, got {inventory!r}")
        return cls(
            inventory=dict(inventory),
            blocks=tuple(Block(*entry) for entry in _entries(data, "blocks", "[material, dx, dy]", 3)),
            mobs=tuple(Mob(*entry) for entry in _entries(data, "mobs", "[kind, dx, dy]", 3)),
            daylight=data.get("daylight"),
            player_offset=_list(data.get("player_offset", [0, 0]), "start.player_offset", "[dx, dy]", 2),
            clear_hostiles_within=data.get("clear_hostiles_within", 0),
        )


def _entries(data: dict, name: str, shape: str, length: int) -> list[tuple]:
    entries = data.get(name, [])
    if not isinstance(entries, list):
        raise ValueError(f"start.{name}: expected a list of {shape}, got {entries!r}")
    return [_list(entry, f"start.{name}[{i}]", shape, length) for i, entry in enumerate(entries)]


def _list(value: object, where: str, shape: str, length: int) -> tuple:
    if not isinstance(value, list) or len(value) != length:
        raise ValueError(f"{where}: expected {shape}, got {value!r}")
    return tuple(value)


def _check_cell(name: str, what: str, dx: object, dy: object) -> None:
    """Raise unless (dx, dy) is an integer offset from the spawn to a cell of the world."""
    if not (is_int(dx) and is_int(dy)):
        raise ValueError(f"start.{name}: {what} at ({dx!r}, {dy!r}): offsets must be integers")
    if not (0 <= SPAWN[0] + dx < WORLD_AREA[0] and 0 <= SPAWN[1] + dy < WORLD_AREA[1]):
        raise ValueError(f"start.{name}: {what} at ({dx}, {dy}) is outside the {WORLD_AREA[0]}x{WORLD_AREA[1]} world "
                         f"(from the spawn, dx runs {-SPAWN[0]}..{WORLD_AREA[0] - 1 - SPAWN[0]}, "
                         f"dy {-SPAWN[1]}..{WORLD_AREA[1] - 1 - SPAWN[1]})")


def apply_start_state(world: crafter.engine.World, player: objects.Player, start: StartState) -> None:
    """Edit the world in place; the player's spawn is the origin of every offset."""
    origin = np.array(player.pos)
    target = origin + np.array(start.player_offset)
    if start.player_offset != (0, 0):
        _clear_cell(world, target, floor="grass", keep=player)
        world.move(player, target)
    for block in start.blocks:
        pos = origin + np.array((block.dx, block.dy))
        _clear_cell(world, pos, floor=block.material, keep=player)
    for mob in start.mobs:
        pos = origin + np.array((mob.dx, mob.dy))
        _clear_cell(world, pos, floor=VOCABULARY.mobs[mob.kind].floor, keep=player, keep_walkable=True)
        cls = VOCABULARY.mobs[mob.kind].object_class
        world.add(cls(world, pos, player) if cls is not objects.Cow else cls(world, pos))
    if start.clear_hostiles_within:
        for obj in world.objects:
            if isinstance(obj, VOCABULARY.hostile_classes) and not _placed(obj, origin, start):
                if player.distance(obj) <= start.clear_hostiles_within:
                    world.remove(obj)
    for name, amount in start.inventory.items():
        player.inventory[name] = amount


def _placed(obj: objects.Object, origin: np.ndarray, start: StartState) -> bool:
    offset = tuple(int(v) for v in obj.pos - origin)
    return any((m.dx, m.dy) == offset for m in start.mobs)


def _clear_cell(world, pos, floor: str, keep, keep_walkable: bool = False) -> None:
    material, obj = world[pos]
    if obj is not None and obj is not keep:
        world.remove(obj)
    if keep_walkable and material in crafter.constants.walkable:
        return
    world[pos] = floor
