"""The Crafter backend behind crossagent's Gymnasium-style interface."""

from __future__ import annotations

from dataclasses import dataclass

import crafter
import numpy as np

from crossagent.envs.crafter_world import DeterministicCrafter
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.envs.start_state import StartState, apply_start_state
from crossagent.envs.text_view import render_text

ACTION_NAMES: tuple[str, ...] = tuple(crafter.constants.actions)
ACHIEVEMENTS: tuple[str, ...] = tuple(crafter.constants.achievements)


@dataclass(frozen=True)
class Observation:
    """What a player sees: the image and, for text-only models, its text rendering."""

    image: np.ndarray | None
    text: str | None


class CrafterEnv:
    """`reset(seed=..., options=...) -> (obs, info)`; `step(a) -> (obs, r, terminated, truncated, info)`.

    `seed` picks the generated world; `options` may hold `start` (a StartState) and
    `dynamics_seed` (randomness after the start; defaults to `seed`). `terminated` is death,
    `truncated` is reaching `max_steps`. Observations carry the image and/or text as asked.
    """

    action_names = ACTION_NAMES

    def __init__(self, image_size: int = 64, observe_image: bool = True, observe_text: bool = True,
                 max_steps: int = 10000):
        self.image_size = image_size
        self.observe_image = observe_image
        self.observe_text = observe_text
        self.max_steps = max_steps
        self._game = DeterministicCrafter(image_size=image_size, length=max_steps)
        self._state = PrivilegedState(self._game)
        self._started = False

    def reset(self, *, seed: int, options: dict | None = None) -> tuple[Observation, dict]:
        options = dict(options or {})
        start: StartState = options.pop("start", None) or StartState()
        dynamics_seed = int(options.pop("dynamics_seed", seed))
        if options:
            raise ValueError(f"reset: unknown option(s) {', '.join(sorted(options))}")
        self._game.reset_world(int(seed), dynamics_seed, start.fixed_daylight)
        apply_start_state(self._game.world, self._game.player, start)
        self._game._last_health = self._game.player.health
        self._started = True
        return self.observation(), {"step": 0, "unlocked": []}

    def step(self, action: int) -> tuple[Observation, float, bool, bool, dict]:
        if not self._started:
            raise RuntimeError("step() called before reset()")
        if not 0 <= int(action) < len(ACTION_NAMES):
            raise ValueError(f"action {action!r} is not in 0..{len(ACTION_NAMES) - 1}")
        before = {name for name, count in self._game.player.achievements.items() if count > 0}
        _, reward, done, info = self._game.step(int(action))
        unlocked = sorted(name for name, count in info["achievements"].items() if count > 0 and name not in before)
        terminated = self._game.player.health <= 0
        truncated = bool(done and not terminated)
        return self.observation(), float(reward), terminated, truncated, {"step": self._game.step_count, "unlocked": unlocked}

    def observation(self) -> Observation:
        return Observation(
            image=self.render() if self.observe_image else None,
            text=render_text(self._state) if self.observe_text else None,
        )

    def render(self, size: int | None = None) -> np.ndarray:
        side = size or self.image_size
        return self._game.render((side, side))

    def privileged(self) -> PrivilegedState:
        return self._state
