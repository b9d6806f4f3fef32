"""The action levels, from abstract to concrete. Adding a level is adding its module here."""

from __future__ import annotations

from types import ModuleType

from crossagent.actions import grounding, motion, raw, skill

# Order matters: Chain-of-Action replies go from abstract (skill) to concrete (raw).
LEVEL_MODULES: tuple[ModuleType, ...] = (skill, grounding, motion, raw)
LEVELS: tuple[str, ...] = tuple(module.NAME for module in LEVEL_MODULES)
MODULE_OF: dict[str, ModuleType] = {module.NAME: module for module in LEVEL_MODULES}
LEVEL_OF_TAG: dict[str, str] = {module.TAG.lower(): module.NAME for module in LEVEL_MODULES}
UPPER_LEVELS: tuple[str, ...] = LEVELS[:-1]


def concreteness(level: str) -> int:
    return LEVELS.index(level)
