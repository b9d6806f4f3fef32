"""Start-state edits applied to a freshly restored world: inventory, blocks, mobs, daylight, position.

Positions are offsets (dx, dy) from the player's spawn: x grows to the right, y grows down,
as on the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import crafter
import numpy as np
from crafter import objects

from crossagent.envs.crafter_vocabulary import VOCABULARY

MATERIALS = tuple(crafter.constants.materials)
ITEMS = tuple(crafter.constants.items)
# "dusk" keeps zombies around: in full daylight the game despawns every zombie within ~25 steps.
DAYLIGHT = {"day": 1.0, "dusk": 0.5, "night": 0.0}


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
            if not isinstance(amount, int) or not 0 <= amount <= limit:
                raise ValueError(f"start.inventory.{name}: {amount!r} is not an integer in 0..{limit}")
        for block in self.blocks:
            if block.material not in MATERIALS:
                raise ValueError(f"start.blocks: unknown material {block.material!r} (known: {', '.join(MATERIALS)})")
            if (block.dx, block.dy) == self.player_offset:
                raise ValueError(f"start.blocks: {block.material} at ({block.dx}, {block.dy}) is the player's cell")
        for mob in self.mobs:
            if mob.kind not in VOCABULARY.mobs:
                raise ValueError(f"start.mobs: unknown mob {mob.kind!r} (known: {', '.join(VOCABULARY.mobs)})")
            if (mob.dx, mob.dy) == self.player_offset:
                raise ValueError(f"start.mobs: {mob.kind} at ({mob.dx}, {mob.dy}) is the player's cell")
        if self.daylight is not None and self.daylight not in DAYLIGHT:
            raise ValueError(f"start.daylight: {self.daylight!r} is not one of {', '.join(DAYLIGHT)} or null")

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
        known = {"inventory", "blocks", "mobs", "daylight", "player_offset", "clear_hostiles_within"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"start: unknown field(s) {', '.join(sorted(unknown))}")
        try:
            return cls(
                inventory=dict(data.get("inventory", {})),
                blocks=tuple(Block(str(m), int(x), int(y)) for m, x, y in data.get("blocks", [])),
                mobs=tuple(Mob(str(k), int(x), int(y)) for k, x, y in data.get("mobs", [])),
                daylight=data.get("daylight"),
                player_offset=tuple(int(v) for v in data.get("player_offset", (0, 0))),
                clear_hostiles_within=int(data.get("clear_hostiles_within", 0)),
            )
        except (TypeError, ValueError) as error:
            if isinstance(error, ValueError) and str(error).startswith("start"):
                raise
            raise ValueError(f"start: malformed entry ({error})") from error


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
    area = np.array(world.area)
    if not ((0 <= pos).all() and (pos < area).all()):
        raise ValueError(f"start: position {tuple(int(v) for v in pos)} is outside the {tuple(int(v) for v in area)} world")
    material, obj = world[pos]
    if obj is not None and obj is not keep:
        world.remove(obj)
    if keep_walkable and material in crafter.constants.walkable:
        return
    world[pos] = floor
