"""The action levels, from abstract to concrete. Adding a level is adding its module here."""

from __future__ import annotations

from types import ModuleType

from crossagent.actions import grounding, latent, motion, raw, skill

# Order matters: Chain-of-Action replies go from abstract (skill) to concrete (raw). A latent code stands
# for a few primitive actions, the shortest abstraction: between motion and raw.
LEVEL_MODULES: tuple[ModuleType, ...] = (skill, grounding, motion, latent, raw)
LEVELS: tuple[str, ...] = tuple(module.NAME for module in LEVEL_MODULES)
MODULE_OF: dict[str, ModuleType] = {module.NAME: module for module in LEVEL_MODULES}
LEVEL_OF_TAG: dict[str, str] = {module.TAG.lower(): module.NAME for module in LEVEL_MODULES}
UPPER_LEVELS: tuple[str, ...] = LEVELS[:-1]
# Levels with no scripted executor: a learned decoder runs them (executors.registry).
DECODED_LEVELS: tuple[str, ...] = (latent.NAME,)


def concreteness(level: str) -> int:
    return LEVELS.index(level)
