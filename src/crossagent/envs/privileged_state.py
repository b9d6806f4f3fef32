"""Read access to the true game state, for experts, executors and success predicates only.

A policy never receives this object; it sees an `Observation`.
"""

from __future__ import annotations

from dataclasses import dataclass

from crafter import objects

from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.crafter_world import DeterministicCrafter


@dataclass(frozen=True)
class Progress:
    """What success predicates compare between the start and now."""

    step: int
    inventory: dict[str, int]
    achievements: dict[str, int]
    position: tuple[int, int]
    health: int
    alive: bool


class PrivilegedState:
    """A live view: it always reflects the env's current world, also after a reset."""

    def __init__(self, game: DeterministicCrafter):
        self._game = game

    @property
    def world(self):
        return self._game.world

    @property
    def player(self) -> objects.Player:
        return self._game.player

    @property
    def position(self) -> tuple[int, int]:
        return int(self.player.pos[0]), int(self.player.pos[1])

    @property
    def facing(self) -> tuple[int, int]:
        return int(self.player.facing[0]), int(self.player.facing[1])

    @property
    def facing_cell(self) -> tuple[int, int]:
        return self.position[0] + self.facing[0], self.position[1] + self.facing[1]

    @property
    def inventory(self) -> dict[str, int]:
        return self.player.inventory

    @property
    def achievements(self) -> dict[str, int]:
        return self.player.achievements

    @property
    def sleeping(self) -> bool:
        return bool(self.player.sleeping)

    @property
    def daylight(self) -> float:
        return float(self.world.daylight)

    @property
    def step(self) -> int:
        return self._game.step_count

    @property
    def area(self) -> tuple[int, int]:
        return tuple(self.world.area)

    def material(self, cell: tuple[int, int]) -> str | None:
        return self.world[cell][0]

    def object_at(self, cell: tuple[int, int]):
        return self.world[cell][1]

    def mobs(self, kind: type | tuple[type, ...] = VOCABULARY.mob_classes) -> list:
        return [obj for obj in self.world.objects if isinstance(obj, kind) and obj.health > 0]

    def copy_into(self, scratch: DeterministicCrafter) -> "PrivilegedState":
        """A detached copy of the game in `scratch`: stepping it never touches this one."""
        self._game.copy_state_to(scratch)
        return PrivilegedState(scratch)

    def progress(self) -> Progress:
        return Progress(
            step=self.step,
            inventory=dict(self.inventory),
            achievements=dict(self.achievements),
            position=self.position,
            health=int(self.player.health),
            alive=self.player.health > 0,
        )
