"""Motion actions (MA, spec section 4): object-agnostic movements labelled from env actions.

A frame's motion is a set of atomic phrases ("move forward", "turn right", ...).
A `Motion:` line writes them in OpenHA's order, merging pairs the way OpenHA
does ("move forward and move left", "turn right and down"), joined by ", ".
Runs of frames with equal motions become one segment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crossagent.actions.minecraft.env_action import camera_of
from crossagent.actions.parse_error import ParseError

TAG = "Motion:"
NO_OP = "no_op"
# Up to two mouse pixels (0.3 degree) is hand jitter, not a turn.
DEFAULT_CAMERA_DEADZONE_DEG = 0.3

HOTBAR_ATOMS = tuple(f"switch to hotbar {i}" for i in range(1, 10))
# Canonical order, by OpenHA's slots: movement, move state, camera, mouse, keyboard operations.
ATOMS: tuple[str, ...] = (
    "move forward", "move back", "move left", "move right",
    "sprint", "sneak",
    "turn left", "turn right", "turn up", "turn down",
    "cursor move left", "cursor move right", "cursor move up", "cursor move down",
    "attack / mine", "use / place", "operate gui", "choose",
    "jump", "drop", "swap", *HOTBAR_ATOMS,
    "open inventory", "close inventory", "close gui",
)
_ATOM_ORDER = {atom: i for i, atom in enumerate(ATOMS)}
# Atoms written as one phrase joined by " and ", the shared prefix said once.
_MERGED_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("move forward", "move back", "move left", "move right")),
    ("turn ", ("turn left", "turn right", "turn up", "turn down")),
    ("cursor move ", ("cursor move left", "cursor move right", "cursor move up", "cursor move down")),
    ("", ("attack / mine", "use / place")),
    ("", ("operate gui", "choose")),
)


@dataclass(frozen=True)
class MotionSegment:
    start: int  # first frame
    end: int  # one past the last frame
    text: str  # the `Motion:` line


def format_motion(atoms: Iterable[str]) -> str:
    unknown = set(atoms) - set(ATOMS)
    if unknown:
        raise ValueError(f"unknown motion atoms {sorted(unknown)}")
    ordered = sorted(set(atoms), key=_ATOM_ORDER.__getitem__)
    phrases: list[str] = []
    for atom in ordered:
        group = next((g for g in _MERGED_GROUPS if atom in g[1]), None)
        if group is None:
            phrases.append(atom)
            continue
        prefix, members = group
        together = [a for a in ordered if a in members]
        if atom == together[0]:  # group members are adjacent in ATOMS: write the group once
            phrases.append(" and ".join([atom, *(a.removeprefix(prefix) for a in together[1:])]))
    return f"{TAG} {', '.join(phrases) if phrases else NO_OP}"


def frame_motions(
    actions: Sequence[Mapping[str, Any]],
    gui_open: Sequence[bool] | None = None,
    camera_deadzone_deg: float = DEFAULT_CAMERA_DEADZONE_DEG,
) -> list[frozenset[str]]:
    """The motion atoms of every frame (an empty set is no_op).

    `gui_open[i]` says whether a GUI was open at frame i (VPT's `isGuiOpen`); without
    it the GUI state is tracked from the actions: the inventory key toggles it and
    ESC closes it. While a GUI is open the mouse moves a cursor, clicks operate the
    GUI and walking keys do nothing. A held inventory key keeps the phrase decided
    when it went down, so a press lasting several frames is one open (or close).
    """
    if gui_open is not None and len(gui_open) != len(actions):
        raise ValueError("gui_open needs one entry per action")
    labels = []
    tracked_open = False
    inventory_phrase: str | None = None
    for i, action in enumerate(actions):
        is_open = gui_open[i] if gui_open is not None else tracked_open
        if action.get("inventory", 0):
            if inventory_phrase is None:
                inventory_phrase = "close inventory" if is_open else "open inventory"
                tracked_open = not is_open
        else:
            inventory_phrase = None
        if action.get("ESC", 0) and is_open:
            tracked_open = False
        labels.append(_frame_atoms(action, is_open, inventory_phrase, camera_deadzone_deg))
    return labels


def _frame_atoms(action: Mapping[str, Any], is_open: bool, inventory_phrase: str | None, deadzone: float) -> frozenset[str]:
    pressed = {button for button, value in action.items() if button != "camera" and value}
    pitch, yaw = camera_of(action)
    atoms = set()
    if is_open:
        atoms |= _camera_atoms("cursor move", pitch, yaw, deadzone)
        atoms |= {atom for button, atom in (("attack", "operate gui"), ("use", "choose")) if button in pressed}
        if "ESC" in pressed:
            atoms.add("close gui")
    else:
        # Both keys of a pair cancel out, as in VPT's action groups.
        for first, second in (("forward", "back"), ("left", "right")):
            if (first in pressed) != (second in pressed):
                atoms.add(f"move {first if first in pressed else second}")
        if "sneak" in pressed:  # sneaking stops a sprint
            atoms.add("sneak")
        elif "sprint" in pressed:
            atoms.add("sprint")
        atoms |= _camera_atoms("turn", pitch, yaw, deadzone)
        atoms |= {atom for button, atom in (("attack", "attack / mine"), ("use", "use / place"), ("jump", "jump"))
                  if button in pressed}
    atoms |= {atom for button, atom in (("drop", "drop"), ("swapHands", "swap")) if button in pressed}
    atoms |= {f"switch to hotbar {i}" for i in range(1, 10) if f"hotbar.{i}" in pressed}
    if inventory_phrase:
        atoms.add(inventory_phrase)
    return frozenset(atoms)


def _camera_atoms(verb: str, pitch: float, yaw: float, deadzone: float) -> set[str]:
    atoms = set()
    if abs(yaw) > deadzone:
        atoms.add(f"{verb} {'right' if yaw > 0 else 'left'}")
    if abs(pitch) > deadzone:
        atoms.add(f"{verb} {'down' if pitch > 0 else 'up'}")
    return atoms


def segment_motions(
    actions: Sequence[Mapping[str, Any]],
    gui_open: Sequence[bool] | None = None,
    camera_deadzone_deg: float = DEFAULT_CAMERA_DEADZONE_DEG,
) -> list[MotionSegment]:
    """Runs of frames with equal motions, each one segment (no_op runs included)."""
    segments: list[MotionSegment] = []
    labels = frame_motions(actions, gui_open, camera_deadzone_deg)
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            segments.append(MotionSegment(start, i, format_motion(labels[start])))
            start = i
    return segments


def parse_motion(text: str) -> frozenset[str] | ParseError:
    """The atoms of the last `Motion:` line (or of all of `text` without a tag).

    Lenient: any case and spacing, `attack/mine` for `attack / mine`, merged
    phrases ("turn right and down"), OpenHA's "switch to hotbar 1, 3". Never raises.
    """
    start = text.rfind(TAG)
    body = text if start < 0 else text[start + len(TAG):].split("\n", 1)[0]
    body = re.sub(r"\s*/\s*", " / ", " ".join(body.lower().split()))
    if not body:
        return ParseError("empty motion", text)
    atoms: list[str] = []
    for phrase in body.split(","):
        pieces = [p.strip() for p in phrase.split(" and ")]
        prefix = next((v for v in ("cursor move ", "turn ", "move ") if pieces[0].startswith(v)), "")
        for piece in pieces:
            if piece in ("", NO_OP):
                continue
            if atoms and atoms[-1] in HOTBAR_ATOMS and re.fullmatch("[1-9]", piece):
                atom = f"switch to hotbar {piece}"
            elif piece in _ATOM_ORDER:
                atom = piece
            else:
                atom = prefix + piece
            if atom not in _ATOM_ORDER:
                return ParseError(f"unknown motion {piece!r}", text)
            atoms.append(atom)
    if not atoms and NO_OP not in body:
        return ParseError("no motion phrase", text)
    return frozenset(atoms)
