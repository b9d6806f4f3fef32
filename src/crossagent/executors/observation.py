"""What a learned executor reads: the text view (envs.text_view), parsed back into numbers.

The text view is exactly the player's observation, so parsing it (instead of reading the state)
is what keeps a learned executor honest: it can act on nothing the policy could not see.
"""

from __future__ import annotations

from dataclasses import dataclass

import crafter
import torch

from crossagent.envs.crafter_env import ACHIEVEMENTS
from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.text_view import LOCAL_VIEW

ITEMS: tuple[str, ...] = tuple(crafter.constants.items)
# Every symbol the view draws, in the vocabulary's order; unknown characters share the last slot.
SYMBOLS: tuple[str, ...] = (*dict.fromkeys([*VOCABULARY.text_view.object_symbols.values(),
                                            *VOCABULARY.text_view.material_symbols.values()]), "?")
# Symbols of the cells a player can step onto (crafter's Player.walkable: the walkable materials and lava).
WALKABLE: frozenset[str] = frozenset(VOCABULARY.text_view.material_symbols[m] for m in (*crafter.constants.walkable, "lava"))
FACINGS: tuple[str, ...] = tuple(VOCABULARY.directions)
COUNT_CAP = 9  # inventory counts are read as min(count, 9) / 9: crafter caps most at 9
CENTRE = (LOCAL_VIEW[0] // 2, LOCAL_VIEW[1] // 2)  # the player's (column, row) in the view


@dataclass(frozen=True)
class View:
    """One parsed text view."""

    rows: tuple[str, ...]  # LOCAL_VIEW[1] rows of LOCAL_VIEW[0] symbols, the player at CENTRE
    facing: str  # a direction name
    asleep: bool
    inventory: dict[str, int]  # vitals and items
    achievements: frozenset[str]
    night: bool

    def symbol(self, column: int, row: int) -> str | None:
        """The symbol at a view slot, None outside the view."""
        if 0 <= column < LOCAL_VIEW[0] and 0 <= row < LOCAL_VIEW[1]:
            return self.rows[row][column]
        return None


def parse_view(text: str) -> View:
    lines = text.splitlines()
    if not lines or lines[0] != "view:" or len(lines) < LOCAL_VIEW[1] + 6:
        raise ValueError(f"not a text view (envs.text_view.render_text): {text[:40]!r}")
    rows = tuple(line.ljust(LOCAL_VIEW[0])[:LOCAL_VIEW[0]] for line in lines[1:1 + LOCAL_VIEW[1]])
    fields = dict(line.split(": ", 1) for line in lines[1 + LOCAL_VIEW[1]:])
    facing = fields["facing"].split()[0]
    inventory = _counts(fields["vitals"]) | _counts(fields["inventory"])
    unlocked = frozenset() if fields["achievements"] == "none" else frozenset(fields["achievements"].split(", "))
    return View(rows, facing, "(asleep)" in fields["facing"], inventory, unlocked, fields["time"] == "night")


def _counts(text: str) -> dict[str, int]:
    if text == "empty":
        return {}
    pairs = (entry.rsplit(" ", 1) for entry in text.split(", "))
    return {name: int(count) for name, count in pairs}


_SYMBOL_INDEX = {symbol: i for i, symbol in enumerate(SYMBOLS)}


def symbol_ids(view: View) -> torch.Tensor:
    """The view's symbols as indices into SYMBOLS, (rows, columns); the policy one-hots them."""
    return torch.tensor([[_SYMBOL_INDEX.get(symbol, len(SYMBOLS) - 1) for symbol in row] for row in view.rows],
                        dtype=torch.uint8)


STATUS_SIZE = len(FACINGS) + 2 + len(ITEMS) + len(ACHIEVEMENTS)


def status_tensor(view: View) -> torch.Tensor:
    """Facing, asleep, night, inventory counts and unlocked achievements, as one vector."""
    facing = [float(view.facing == name) for name in FACINGS]
    items = [min(view.inventory.get(name, 0), COUNT_CAP) / COUNT_CAP for name in ITEMS]
    unlocked = [float(name in view.achievements) for name in ACHIEVEMENTS]
    return torch.tensor([*facing, float(view.asleep), float(view.night), *items, *unlocked])
