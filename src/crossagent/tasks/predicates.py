"""Success predicates: data (a dict with a `kind`) that checks the start against now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import crafter

from crossagent.envs.privileged_state import PrivilegedState, Progress
from crossagent.envs.start_state import is_int

ITEMS = tuple(crafter.constants.items)
ACHIEVEMENTS = tuple(crafter.constants.achievements)
MATERIALS = tuple(crafter.constants.materials)


class Predicate(Protocol):
    def check(self, start: Progress, now: Progress, state: PrivilegedState) -> bool: ...
    def to_dict(self) -> dict: ...


@dataclass(frozen=True)
class Gain:
    """The inventory holds at least `amount` more of `item` than at the start."""

    item: str
    amount: int = 1

    def check(self, start: Progress, now: Progress, state: PrivilegedState) -> bool:
        return now.inventory[self.item] - start.inventory[self.item] >= self.amount

    def to_dict(self) -> dict:
        return {"kind": "gain", "item": self.item, "amount": self.amount}


@dataclass(frozen=True)
class Achieve:
    """An achievement counter grew by at least `count` (placing, making, defeating, eating...)."""

    name: str
    count: int = 1

    def check(self, start: Progress, now: Progress, state: PrivilegedState) -> bool:
        return now.achievements[self.name] - start.achievements[self.name] >= self.count

    def to_dict(self) -> dict:
        return {"kind": "achieve", "name": self.name, "count": self.count}


@dataclass(frozen=True)
class Reach:
    """The player stands next to (4-neighbourhood) a cell of `material`."""

    material: str

    def check(self, start: Progress, now: Progress, state: PrivilegedState) -> bool:
        x, y = now.position
        return any(state.material((x + dx, y + dy)) == self.material for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)))

    def to_dict(self) -> dict:
        return {"kind": "reach", "material": self.material}


@dataclass(frozen=True)
class Survive:
    """The player is still alive after `steps` steps."""

    steps: int

    def check(self, start: Progress, now: Progress, state: PrivilegedState) -> bool:
        return now.alive and now.step - start.step >= self.steps

    def to_dict(self) -> dict:
        return {"kind": "survive", "steps": self.steps}


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Predicate, ...]

    def check(self, start: Progress, now: Progress, state: PrivilegedState) -> bool:
        return all(part.check(start, now, state) for part in self.parts)

    def to_dict(self) -> dict:
        return {"kind": "all", "of": [part.to_dict() for part in self.parts]}


# The fields each kind of predicate takes, besides `kind`.
FIELDS = {"gain": ("item", "amount"), "achieve": ("name", "count"), "reach": ("material",), "survive": ("steps",),
          "all": ("of",)}


def predicate_from_dict(data: dict, where: str = "success") -> Predicate:
    """Build a predicate, or raise ValueError naming the field and the problem."""
    if not isinstance(data, dict) or "kind" not in data:
        raise ValueError(f"{where}: expected an object with a 'kind' field, got {data!r}")
    kind = data["kind"]
    if not isinstance(kind, str) or kind not in FIELDS:
        raise ValueError(f"{where}.kind: unknown predicate kind {kind!r} (known: {', '.join(FIELDS)})")
    fields = {k: v for k, v in data.items() if k != "kind"}
    unknown = set(fields) - set(FIELDS[kind])
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} for kind {kind!r} "
                         f"(known: {', '.join(FIELDS[kind])})")

    def need(name: str, allowed: tuple | None = None, integer: bool = False):
        if name not in fields:
            raise ValueError(f"{where}.{name}: missing for kind {kind!r}")
        value = fields[name]
        if allowed is not None and value not in allowed:
            raise ValueError(f"{where}.{name}: {value!r} is not one of {', '.join(allowed)}")
        if integer and (not is_int(value) or value < 1):
            raise ValueError(f"{where}.{name}: {value!r} is not a positive integer")
        return value

    if kind == "gain":
        return Gain(need("item", ITEMS), need("amount", integer=True) if "amount" in fields else 1)
    if kind == "achieve":
        return Achieve(need("name", ACHIEVEMENTS), need("count", integer=True) if "count" in fields else 1)
    if kind == "reach":
        return Reach(need("material", MATERIALS))
    if kind == "survive":
        return Survive(need("steps", integer=True))
    parts = need("of")
    if not isinstance(parts, list) or not parts:
        raise ValueError(f"{where}.of: expected a non-empty list of predicates")
    return AllOf(tuple(predicate_from_dict(p, f"{where}.of[{i}]") for i, p in enumerate(parts)))
