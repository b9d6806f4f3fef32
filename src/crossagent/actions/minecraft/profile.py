"""Format profiles: every way the Minecraft encoders may differ, as data.

Two named profiles:
  crossagent  our canonical form: move and press always written, keys in the keyboard
              table's order, whole pixels rounded half away from zero (a move and its
              mirror encode symmetrically), `inventory` an ordinary raw-token group.
  openha      byte-identical to the released OpenHA encoders (minecraft-formats.md
              sections 2 and 3): empty parts left out, `no_op` for the null action, keys in
              the recording's order, half-to-even rounding after 3 decimals, a trailing
              space, `inventory` exclusive in raw tokens.
Every encoder takes a profile; the released options (decimals, camera scale, key
renaming, always writing move/press, the tag-wrapped CoA layout) are fields, so a
variant is `dataclasses.replace(OPENHA, decimals=2)`. Parsers read both profiles' forms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from crossagent.actions.minecraft.env_action import KEY_TO_BUTTON

# The order in which the released encoder lists the keys of an env action.
OPENHA_ENV_KEY_ORDER: tuple[str, ...] = (
    "escape", "s", "q", "w", *(str(i) for i in range(1, 10)), "e", "space", "a", "d",
    "left.shift", "left.control", "f",
)
TABLE_KEY_ORDER: tuple[str, ...] = tuple(KEY_TO_BUTTON)
COA_LAYOUTS = ("lines", "tags")


def round_half_away_from_zero(value: float, decimals: int) -> float:
    scale = 10 ** decimals
    return math.copysign(math.floor(abs(value) * scale + 0.5), value) / scale


def round_half_even_after_3_decimals(value: float, decimals: int) -> float:
    # The first rounding removes float noise (19 px of yaw comes back as 19.000000000000004).
    return round(round(value, 3), decimals)


PIXEL_ROUNDINGS: Mapping[str, Callable[[float, int], float]] = MappingProxyType({
    "half_away_from_zero": round_half_away_from_zero,
    "half_even_after_3_decimals": round_half_even_after_3_decimals,
})


@dataclass(frozen=True)
class McProfile:
    name: str
    # Text actions (section 2).
    write_empty_parts: bool  # `move(0, 0)` and `press()` written rather than left out (null: `no_op`)
    sort_keys: bool  # keys written in env_key_order rather than in the order given (the recording's)
    env_key_order: tuple[str, ...]  # order of the keys of an env action turned into keys
    pixel_rounding: str  # a PIXEL_ROUNDINGS name
    decimals: int = 0  # decimals of the written move(dx, dy)
    camera_scale: float = 1.0  # written move = mouse pixels * camera_scale
    key_names: Mapping[str, str] = field(default_factory=dict)  # keyboard-table name -> written name
    text_suffix: str = ""  # what follows an action's text
    # Raw tokens (section 3).
    inventory_exclusive: bool = False  # VPT's joint action space: inventory excludes every other button
    # Chain of Action (section 7).
    coa_layout: str = "lines"  # `Motion: …` lines, or `<motion>…</motion>` tags

    def __post_init__(self) -> None:
        if self.pixel_rounding not in PIXEL_ROUNDINGS:
            raise ValueError(f"unknown pixel rounding {self.pixel_rounding!r} (known: {', '.join(PIXEL_ROUNDINGS)})")
        if sorted(self.env_key_order) != sorted(KEY_TO_BUTTON):
            raise ValueError("env_key_order must list every key of the keyboard table once")
        if self.decimals < 0 or not (math.isfinite(self.camera_scale) and self.camera_scale > 0):
            raise ValueError("decimals must be >= 0 and camera_scale a positive number")
        unknown = sorted(set(self.key_names) - set(KEY_TO_BUTTON))
        if unknown:
            raise ValueError(f"key_names renames unknown keys {unknown}")
        if len(set(self.key_names.values())) != len(self.key_names):
            raise ValueError("key_names gives two keys the same name")
        if self.coa_layout not in COA_LAYOUTS:
            raise ValueError(f"unknown CoA layout {self.coa_layout!r} (known: {', '.join(COA_LAYOUTS)})")
        object.__setattr__(self, "key_names", MappingProxyType(dict(self.key_names)))

    def round_pixels(self, value: float) -> float:
        return PIXEL_ROUNDINGS[self.pixel_rounding](value, self.decimals)


CROSSAGENT = McProfile(
    name="crossagent", write_empty_parts=True, sort_keys=True, env_key_order=TABLE_KEY_ORDER,
    pixel_rounding="half_away_from_zero",
)
OPENHA = McProfile(
    name="openha", write_empty_parts=False, sort_keys=False, env_key_order=OPENHA_ENV_KEY_ORDER,
    pixel_rounding="half_even_after_3_decimals", text_suffix=" ", inventory_exclusive=True,
)
PROFILES: Mapping[str, McProfile] = MappingProxyType({p.name: p for p in (CROSSAGENT, OPENHA)})


def profile_named(name: str) -> McProfile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
    return PROFILES[name]
