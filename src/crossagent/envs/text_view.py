"""A text rendering of what the image shows (the local 9x7 view, inventory and vitals), and the
achievements unlocked so far in the episode, which crafter reports to the agent in every step's info.

The achievements are the player's memory of its progress: a station placed and left behind is out of
the 9x7 view, so without them "wood 1, wood_pickaxe 1" reads the same before and after placing a
furnace, and the next subgoal cannot be told from the view (the craft tasks' main failure).
The symbols' legend is not repeated in every view: prompts state it once (models.prompts).
"""

from __future__ import annotations

from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.privileged_state import PrivilegedState

# Bumped whenever the rendering changes, so a recording of older views is refused rather than mixed in
# (data.recording's manifest and the pipeline's record stage carry it). 2: the achievements line.
TEXT_VIEW_VERSION = 2
LOCAL_VIEW = (9, 7)  # columns, rows of world cells on the image above the inventory bar
FACING_NAMES = {step: name for name, step in VOCABULARY.directions.items()}


def local_view_cells(state: PrivilegedState) -> list[tuple[int, int]]:
    """World cells shown on the image, row by row (top to bottom, left to right)."""
    px, py = state.position
    half_w, half_h = LOCAL_VIEW[0] // 2, LOCAL_VIEW[1] // 2
    return [(px + dx, py + dy) for dy in range(-half_h, half_h + 1) for dx in range(-half_w, half_w + 1)]


def render_text(state: PrivilegedState) -> str:
    words = VOCABULARY.text_view
    cells = local_view_cells(state)
    rows = []
    for row in range(LOCAL_VIEW[1]):
        symbols = []
        for cell in cells[row * LOCAL_VIEW[0]:(row + 1) * LOCAL_VIEW[0]]:
            obj = state.object_at(cell)
            symbols.append(words.object_symbols.get(type(obj), "?") if obj
                           else words.material_symbols.get(state.material(cell), "?"))
        rows.append("".join(symbols))
    items = [f"{name} {count}" for name, count in state.inventory.items() if name not in words.vitals and count > 0]
    unlocked = [name for name, count in state.achievements.items() if count > 0]
    vitals = ", ".join(f"{name} {state.inventory[name]}" for name in words.vitals)
    return "\n".join([
        "view:", *rows,
        f"facing: {FACING_NAMES[state.facing]}" + (" (asleep)" if state.sleeping else ""),
        f"vitals: {vitals}",
        f"inventory: {', '.join(items) if items else 'empty'}",
        f"achievements: {', '.join(unlocked) if unlocked else 'none'}",
        f"time: {'night' if state.daylight < 0.35 else 'day'}",
    ])
