"""A deterministic Crafter world: stock `crafter.Env` with its three traps removed.

1. The stock env despawns a creature picked from a `set` whose order follows object ids
   (memory addresses), so two processes diverge. We hand it the chunk's objects sorted by
   their insertion index instead.
2. Rendering at night draws noise from the world's RNG, so an extra render changes the
   future. Stepping here never renders; `render()` saves and restores the RNG state.
3. A reset regenerates the world (~0.65 s). Generated worlds are snapshotted per seed and
   restored by copy (~1 ms). The snapshots are shared by every env of the process.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import crafter
import numpy as np
from crafter import objects, worldgen

WORLD_AREA = (64, 64)
VIEW_GRID = (9, 9)
SNAPSHOT_CACHE_SIZE = 64  # generated worlds kept per process (~50 kB each)
_snapshots: OrderedDict[int, crafter.engine.World] = OrderedDict()


class DeterministicCrafter(crafter.Env):
    """Stock Crafter rules; deterministic stepping, snapshot resets, optional fixed daylight."""

    def __init__(self, image_size: int = 64, length: int = 10000):
        super().__init__(area=WORLD_AREA, view=VIEW_GRID, size=(image_size, image_size),
                         reward=True, length=length, seed=0)
        self.fixed_daylight: float | None = None

    # --- reset -----------------------------------------------------------------------
    def reset_world(self, world_seed: int, dynamics_seed: int, fixed_daylight: float | None = None) -> None:
        """Put the player at the start of the world generated from `world_seed`.

        `dynamics_seed` seeds everything random after the start (mob moves, spawns,
        sapling drops), so trials of one task share the map but not the dice.
        """
        self._set_world(self._generated_world(world_seed))
        self._world.random.seed(dynamics_seed % (2**32))
        self._episode += 1
        self._step = 0
        self.fixed_daylight = fixed_daylight
        self._update_time()
        self._last_health = self._player.health
        self._unlocked = set()

    def _generated_world(self, world_seed: int) -> crafter.engine.World:
        snapshot = _snapshots.get(world_seed)
        if snapshot is None:
            world = crafter.engine.World(WORLD_AREA, crafter.constants.materials, (12, 12))
            world.reset(seed=world_seed)
            center = (WORLD_AREA[0] // 2, WORLD_AREA[1] // 2)
            player = objects.Player(world, center)
            world.add(player)
            worldgen.generate_world(world, player)
            snapshot = world
            _snapshots[world_seed] = snapshot
            if len(_snapshots) > SNAPSHOT_CACHE_SIZE:
                _snapshots.popitem(last=False)
        else:
            _snapshots.move_to_end(world_seed)
        return copy.deepcopy(snapshot)

    def _set_world(self, world: crafter.engine.World) -> None:
        self._world = world
        self._local_view._world = world
        self._sem_view._world = world
        self._player = next(obj for obj in world.objects if isinstance(obj, objects.Player))

    def copy_state_to(self, other: "DeterministicCrafter") -> None:
        """Make `other` an independent copy of this game as it is now (for look-ahead)."""
        other._set_world(copy.deepcopy(self._world))
        other._episode = self._episode
        other._step = self._step
        other.fixed_daylight = self.fixed_daylight
        other._last_health = self._last_health
        other._unlocked = set(self._unlocked)

    # --- stepping ----------------------------------------------------------------------
    def _obs(self) -> None:
        # Stepping must not render: rendering consumes RNG at night. Images come from render().
        return None

    def _update_time(self) -> None:
        if self.fixed_daylight is None:
            super()._update_time()
        else:
            self._world.daylight = self.fixed_daylight

    def _balance_chunk(self, chunk, objs) -> None:
        # The stock code picks from `objs`, a set ordered by memory address: sort by insertion index.
        ordered = sorted(objs, key=lambda obj: int(self._world._obj_map[tuple(obj.pos)]))
        super()._balance_chunk(chunk, ordered)

    def render(self, size: tuple[int, int] | None = None) -> np.ndarray:
        state = self._world.random.get_state()
        try:
            return super().render(None if size is None else tuple(size))
        finally:
            self._world.random.set_state(state)

    # --- privileged access ---------------------------------------------------------------
    @property
    def world(self) -> crafter.engine.World:
        return self._world

    @property
    def player(self) -> objects.Player:
        return self._player

    @property
    def step_count(self) -> int:
        return self._step
