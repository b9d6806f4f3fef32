"""Level `grounding` (`Grounding:`): a verb and a point on the current image.

    Grounding: collect <|object_ref_start|>tree<|object_ref_end|><|point_start|>(412,530)<|point_end|>

Points are on a 0–999 scale of the observation image (x = column, y = row); the label is
optional. `explore` and `no-op` carry no point. The executor maps the point to the world cell
it shows, walks there and acts on it until the target changes or dies; a point that shows
nothing the verb can act on is a failed action with its reason, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import crafter
from crafter import constants, objects

from crossagent.actions import behaviours as b
from crossagent.actions import lark
from crossagent.actions.executor import Executor, done, failed
from crossagent.actions.parse_error import ParseError
from crossagent.actions.pathing import DIRECTIONS, adjacent_to, step_cost
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.envs.view_geometry import POINT_SCALE, cell_at_point

NAME = "grounding"
TAG = "Grounding:"
OBJECT_REF = ("<|object_ref_start|>", "<|object_ref_end|>")
POINT_REF = ("<|point_start|>", "<|point_end|>")
LABELS = (*constants.materials, *VOCABULARY.objects)  # what `label_of` names: a material or a creature
_GROUNDING = re.compile(
    r"^(?P<verb>[a-z][a-z \-]*?)\s*"
    r"(?:<\|object_ref_start\|>(?P<label>[^<]*)<\|object_ref_end\|>)?\s*"
    r"(?:<\|point_start\|>\s*\(\s*(?P<x>-?\d+)\s*,\s*(?P<y>-?\d+)\s*\)\s*<\|point_end\|>)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Grounding:
    verb: str
    point: tuple[int, int] | None = None
    label: str | None = None


def parse(body: str) -> Grounding | ParseError:
    """The text after `Grounding:`."""
    match = _GROUNDING.match(body.strip())
    if not match:
        return ParseError(f"not `VERB [<|object_ref_start|>LABEL<|object_ref_end|>]<|point_start|>(X,Y)<|point_end|>`: "
                          f"{body.strip()!r}", body)
    verb = re.sub(r"\s+", " ", match["verb"].lower().replace("_", " ")).strip()
    words = VOCABULARY.grounding
    verb = words.aliases.get(verb, verb)
    if verb not in words.verbs:
        return ParseError(f"unknown grounding verb {verb!r} (known: {', '.join(words.verbs)})", body)
    label = match["label"].strip() if match["label"] is not None else None
    if match["x"] is None:
        if verb not in words.verbs_without_point:
            return ParseError(f"grounding verb {verb!r} needs a point", body)
        return Grounding(verb, None, label or None)
    point = (int(match["x"]), int(match["y"]))
    if not all(0 <= v < POINT_SCALE for v in point):
        return ParseError(f"point {point} is outside the 0..{POINT_SCALE - 1} image scale", body)
    if verb in words.verbs_without_point:
        return ParseError(f"grounding verb {verb!r} takes no point", body)
    return Grounding(verb, point, label or None)


def to_text(action: Grounding) -> str:
    text = f"{TAG} {action.verb}"
    if action.label:
        text += f" {OBJECT_REF[0]}{action.label}{OBJECT_REF[1]}"
    if action.point is not None:
        text += f"{' ' if not action.label else ''}{POINT_REF[0]}({action.point[0]},{action.point[1]}){POINT_REF[1]}"
    return text


def grammar() -> str:
    """The lines `to_text` writes, as a Lark expression (constrained decoding): labels are `LABELS`, points
    are on the image."""
    words = VOCABULARY.grounding
    pointed = [verb for verb in words.verbs if verb not in words.verbs_without_point]
    label = f"{lark.special_token(OBJECT_REF[0])} {lark.one_of(LABELS)} {lark.special_token(OBJECT_REF[1])}"
    coordinate = lark.integers(0, POINT_SCALE - 1)
    point = (f"{lark.special_token(POINT_REF[0])} \"(\" {coordinate} \",\" {coordinate} \")\" "
             f"{lark.special_token(POINT_REF[1])}")
    with_point = f"{lark.one_of(pointed)} \" \" ({label})? {point}"
    without_point = f"{lark.one_of(words.verbs_without_point)} (\" \" {label})?"
    return f"{lark.literal(TAG + ' ')} ({with_point} | {without_point})"


def label_of(state: PrivilegedState, cell: tuple[int, int]) -> str | None:
    """What a cell shows, as a grounding label: a creature's name or the material."""
    material, obj = state.world[cell]
    if obj is not None and not isinstance(obj, objects.Player):
        return VOCABULARY.object_names.get(type(obj), type(obj).__name__.lower())
    return material


def execute(action: Grounding, state: PrivilegedState, image_size: int) -> Executor:
    if action.verb == "no-op":
        yield b.NOOP
        return done()
    if action.verb == "explore":
        return (yield from b.explore(state))
    cell = cell_at_point(state.position, action.point, image_size)
    if cell is None:
        return failed(f"point {action.point} shows no world cell (inventory bar or border)")
    material, obj = state.world[cell]
    shown = label_of(state, cell)
    if action.verb == "approach":
        # A free cell is walked onto; anything else (a tree, water, a cow) is walked up to.
        if step_cost(state, cell, allow_clearing=False) == 1:
            return (yield from b.go_to(state, lambda c: c == cell, shown or "the point"))
        return (yield from b.go_to(state, adjacent_to({cell}), shown or "the point"))
    if action.verb in ("attack", "eat"):
        return (yield from _fight(action.verb, state, obj, shown))
    if action.verb in ("collect", "drink"):
        return (yield from _collect(action.verb, state, cell, material, obj))
    if action.verb.startswith("place "):
        return (yield from _place(action.verb.removeprefix("place "), state, cell))
    return (yield from _make(action.verb.removeprefix("make ").replace(" ", "_"), state, cell, material))


def _fight(verb: str, state: PrivilegedState, target, shown: str | None) -> Executor:
    wanted = tuple(VOCABULARY.objects[name] for name, verbs in VOCABULARY.creatures.items() if verb in verbs)
    if not isinstance(target, wanted):
        return failed(f"the point shows {shown}, nothing to {verb}")
    if isinstance(target, objects.Plant):
        if not target.ripe:
            return failed("the sapling is not ripe")
        cell = (int(target.pos[0]), int(target.pos[1]))
        outcome = yield from b.go_to(state, adjacent_to({cell}), "the plant")
        if not outcome.ok:
            return outcome
        yield from b.face(state, cell)
        yield b.DO
        return done("ate the plant")
    while not target.removed and target.health > 0:
        yield b.next_attack_action(state, {(int(target.pos[0]), int(target.pos[1]))})
    return done(f"defeated the {shown}")


def _collect(verb: str, state: PrivilegedState, cell, material: str | None, obj) -> Executor:
    if obj is not None and not isinstance(obj, objects.Player):
        return failed(f"the point shows a {label_of(state, cell)}, not something to {verb}")
    if verb == "drink" and material != "water":
        return failed(f"the point shows {material}, not water")
    rule = crafter.constants.collect.get(material)
    if rule is None or (verb == "collect" and material == "water"):
        return failed(f"the point shows {material}, nothing to collect")
    missing = [tool for tool, n in rule["require"].items() if state.inventory[tool] < n]
    if missing:
        return failed(f"collecting {material} needs {', '.join(missing)}")
    achievement = f"collect_{next(iter(rule['receive']))}"
    before = state.achievements[achievement]
    outcome = yield from face_cell(state, cell)
    if not outcome.ok:
        return outcome
    for _ in range(30):  # grass gives a sapling one time in ten
        yield b.DO
        if state.achievements[achievement] > before or state.material(cell) != material:
            return done(f"collected {next(iter(rule['receive']))}")
        if state.facing_cell != cell:
            return failed("something moved the player off the target")
    return failed(f"{material} gave nothing in 30 tries")


def _place(name: str, state: PrivilegedState, cell) -> Executor:
    rule = crafter.constants.place[name]
    material, obj = state.world[cell]
    if material not in rule["where"] or obj is not None or cell == state.position:
        return failed(f"cannot place {name} on {label_of(state, cell)}")
    missing = [item for item, n in rule["uses"].items() if state.inventory[item] < n]
    if missing:
        return failed(f"placing {name} needs {', '.join(missing)}")
    outcome = yield from face_cell(state, cell)
    if not outcome.ok:
        return outcome
    yield ACTION_NAMES.index(f"place_{name}")
    return done(f"placed {name}") if state.material(cell) == name or state.object_at(cell) else failed(
        f"placing {name} had no effect")


def _make(item: str, state: PrivilegedState, cell, material: str | None) -> Executor:
    rule = crafter.constants.make[item]
    if material not in rule["nearby"]:
        return failed(f"the point shows {material}, not a {' or '.join(rule['nearby'])} to make {item} at")
    missing = [k for k, n in rule["uses"].items() if state.inventory[k] < n]
    if missing:
        return failed(f"making {item} needs {', '.join(missing)}")
    stations = list(rule["nearby"])
    near_target = lambda c: max(abs(c[0] - cell[0]), abs(c[1] - cell[1])) <= 1 and b.stations_near(state, c, stations)  # noqa: E731
    outcome = yield from b.go_to(state, near_target, f"the {material}")
    if not outcome.ok:
        return outcome
    return (yield from b.make(state, item))


def face_cell(state: PrivilegedState, cell) -> Executor:
    """Stand next to `cell` facing it; a walkable cell is faced by stepping toward it from two away."""
    if state.facing_cell == cell:
        return done()
    if step_cost(state, cell, allow_clearing=False) is None or state.object_at(cell) is not None:
        outcome = yield from b.go_to(state, adjacent_to({cell}), "the target")
        if not outcome.ok:
            return outcome
        return (yield from b.face(state, cell))
    # Walkable target: arrive at cell - d moving in direction d.
    starts = {(cell[0] - 2 * dx, cell[1] - 2 * dy): (dx, dy) for dx, dy in DIRECTIONS
              if step_cost(state, (cell[0] - dx, cell[1] - dy), allow_clearing=False) == 1}
    if not starts:
        return failed("no free cell to approach the target from")
    outcome = yield from b.go_to(state, lambda c: c in starts or (c == state.position and state.facing_cell == cell),
                                 "a cell facing the target")
    if not outcome.ok:
        return outcome
    if state.facing_cell != cell:
        yield DIRECTIONS[starts[state.position]]
    return done() if state.facing_cell == cell else failed("could not face the target")
