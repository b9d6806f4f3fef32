"""Grounding actions (GA, spec section 5): a verb, an optional label and where on the image.

    Grounding: Mine <|object_ref_start|>oak log<|object_ref_end|><|point_start|>(412,530)<|point_end|>
    Grounding: Kill <|point_start|>(10,20),(30,40)<|point_end|>
    Grounding: Approach <|box_start|>(100,200),(300,400)<|box_end|>

Points and box corners are on a 0-999 scale of the observation (x = column, y = row);
the verb acts at their centroid (`GroundingAction.target`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crossagent.actions.parse_error import ParseError

TAG = "Grounding:"
OBJECT_REF_START, OBJECT_REF_END = "<|object_ref_start|>", "<|object_ref_end|>"
POINT_START, POINT_END = "<|point_start|>", "<|point_end|>"
BOX_START, BOX_END = "<|box_start|>", "<|box_end|>"
POINT_SCALE = 1000  # points run 0..POINT_SCALE-1

# Whether a verb acts on a place: "required" needs points or a box, "none" takes neither
# (a location after it is ignored when parsing), "optional" may carry one (Craft names the
# recipe by its label and may point at the GUI cell; Switch may point at a hotbar slot).
VERB_LOCATIONS: dict[str, str] = {
    "Kill": "required", "Mine": "required", "Approach": "required", "Explore": "none",
    "right click": "required", "move to": "required", "no-op": "none",
    "Use": "required", "Interact": "required", "Craft": "optional", "Switch": "optional",
    "move_camera": "required",
}
VERBS: tuple[str, ...] = tuple(VERB_LOCATIONS)
VERBS_WITHOUT_POINT = frozenset(verb for verb, rule in VERB_LOCATIONS.items() if rule == "none")

Point = tuple[int, int]
Box = tuple[int, int, int, int]  # x1, y1, x2, y2: two opposite corners, top-left first

# Spellings models write for the same verb.
_VERB_BY_SPELLING = {
    **{verb.lower(): verb for verb in VERBS},
    "right-click": "right click", "no_op": "no-op", "noop": "no-op", "no op": "no-op", "move camera": "move_camera",
}
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_PAIR = rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)"
_HEAD = re.compile(
    rf"^\s*(?P<verb>[^<]*?)\s*(?:{re.escape(OBJECT_REF_START)}(?P<label>.*?){re.escape(OBJECT_REF_END)})?\s*(?P<location><.*?)?\s*$",
    re.DOTALL,
)
_POINT_SPANS = re.compile(rf"(?:{re.escape(POINT_START)}[^<]*{re.escape(POINT_END)}\s*)+")
_POINT_SPAN = re.compile(rf"{re.escape(POINT_START)}([^<]*){re.escape(POINT_END)}")
_BARE_PAIR = re.compile(rf"^\s*({_NUM})\s*,\s*({_NUM})\s*$")
_BOX = re.compile(rf"^{re.escape(BOX_START)}\s*{_PAIR}\s*,?\s*{_PAIR}\s*{re.escape(BOX_END)}$")


@dataclass(frozen=True)
class GroundingAction:
    """A verb, an optional label, and where: one or several points, or a box."""

    verb: str
    label: str | None = None
    points: tuple[Point, ...] = ()
    box: Box | None = None

    def __post_init__(self) -> None:
        rule = VERB_LOCATIONS.get(self.verb)
        if rule is None:
            raise ValueError(f"unknown grounding verb {self.verb!r}")
        located = bool(self.points) or self.box is not None
        if self.points and self.box is not None:
            raise ValueError("a grounding action carries points or a box, not both")
        if rule == "none" and located:
            raise ValueError(f"{self.verb!r} carries no point")
        if rule == "required" and not located:
            raise ValueError(f"{self.verb!r} needs a point or a box")
        values = [v for point in self.points for v in point] + list(self.box or ())
        if not all(0 <= v < POINT_SCALE for v in values):
            raise ValueError(f"location {self.points or self.box} outside 0..{POINT_SCALE - 1}")
        if self.box is not None and not (self.box[0] <= self.box[2] and self.box[1] <= self.box[3]):
            raise ValueError(f"box {self.box} must list its top-left corner first")

    @property
    def target(self) -> Point | None:
        """Where the verb acts: the centroid of the points or of the box (halves round to even)."""
        if self.box is not None:
            x1, y1, x2, y2 = self.box
            return round((x1 + x2) / 2), round((y1 + y2) / 2)
        if not self.points:
            return None
        return (round(sum(x for x, _ in self.points) / len(self.points)),
                round(sum(y for _, y in self.points) / len(self.points)))

    def format(self) -> str:
        text = f"{TAG} {self.verb}"
        if self.label:
            text += f" {OBJECT_REF_START}{self.label}{OBJECT_REF_END}"
        location = ""
        if self.points:
            location = POINT_START + ",".join(f"({x},{y})" for x, y in self.points) + POINT_END
        elif self.box is not None:
            location = f"{BOX_START}({self.box[0]},{self.box[1]}),({self.box[2]},{self.box[3]}){BOX_END}"
        if location:
            text += f"{'' if self.label else ' '}{location}"
        return text


def parse_grounding(text: str) -> GroundingAction | ParseError:
    """The last `Grounding:` line of `text` (or all of `text` without a tag). Never raises.

    Lenient: verbs in any case ("right-click", "no_op", "move camera" too), spaces anywhere,
    one point with or without parentheses, several points in one point span or in several,
    a box as two corners, decimals rounded. A location after Explore or no-op is ignored,
    since those verbs act on no place.
    """
    start = text.rfind(TAG)
    body = text if start < 0 else text[start + len(TAG):].split("\n", 1)[0]
    head = _HEAD.match(body)
    location = _read_location(head["location"] or "") if head else None
    if head is None or location is None:
        return ParseError("not `VERB [<|object_ref_start|>LABEL<|object_ref_end|>][<|point_start|>(X,Y)<|point_end|>"
                          " | <|box_start|>(X1,Y1),(X2,Y2)<|box_end|>]`", text)
    verb = _VERB_BY_SPELLING.get(" ".join(head["verb"].lower().split()))
    if verb is None:
        return ParseError(f"unknown grounding verb {head['verb']!r}", text)
    label = (head["label"] or "").strip() or None
    if verb in VERBS_WITHOUT_POINT:
        return GroundingAction(verb, label)
    numbers, is_box = location
    if VERB_LOCATIONS[verb] == "required" and not numbers:
        return ParseError(f"{verb!r} needs a point or a box", text)
    if not all(0 <= v < POINT_SCALE - 0.5 for v in numbers):  # also rejects inf before round() sees it
        return ParseError(f"location {head['location']!r} outside 0..{POINT_SCALE - 1}", text)
    values = [round(v) for v in numbers]
    if is_box:
        x1, y1, x2, y2 = values
        return GroundingAction(verb, label, box=(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)))
    return GroundingAction(verb, label, points=tuple(zip(values[::2], values[1::2])))


def _read_location(location: str) -> tuple[list[float], bool] | None:
    """The numbers of a location and whether it is a box; None when it is not a location."""
    if not location:
        return [], False
    box = _BOX.match(location)
    if box:
        return [float(v) for v in box.groups()], True
    if not _POINT_SPANS.fullmatch(location):
        return None
    numbers: list[float] = []
    for inner in _POINT_SPAN.findall(location):
        pairs = re.findall(_PAIR, inner)
        if not pairs:
            bare = _BARE_PAIR.match(inner)
            if bare is None:
                return None
            pairs = [bare.groups()]
        elif re.sub(_PAIR, "", inner).strip(" ,"):
            return None
        numbers += [float(v) for pair in pairs for v in pair]
    return numbers, False


def point_to_pixel(point: Point, width: int, height: int) -> tuple[int, int]:
    """The spec's mapping, pixel = ceil(X * width / 1000), in exact integer arithmetic.
    Note that it can give `width` (one past the last column) for X near 999."""
    x, y = point
    return -(-x * width // POINT_SCALE), -(-y * height // POINT_SCALE)


def pixel_to_point(pixel: tuple[int, int], width: int, height: int) -> Point:
    """The inverse used here: X = floor(pixel * 1000 / width), capped at 999.

    Round trips (checked in tests, per axis of size S):
      pixel -> point -> pixel is exact for S <= 1000 and within 1 for S <= 2000;
      point -> pixel -> point is within 1 for S >= 500 (below that, several points
      share a pixel and no inverse can do better).
    """
    px, py = pixel
    return min(px * POINT_SCALE // width, POINT_SCALE - 1), min(py * POINT_SCALE // height, POINT_SCALE - 1)
