"""Grounding actions (GA, spec section 5): a verb, an optional label and a point on the image.

    Grounding: Mine <|object_ref_start|>oak log<|object_ref_end|><|point_start|>(412,530)<|point_end|>

Points are on a 0-999 scale of the observation (x = column, y = row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crossagent.actions.parse_error import ParseError

TAG = "Grounding:"
OBJECT_REF_START, OBJECT_REF_END = "<|object_ref_start|>", "<|object_ref_end|>"
POINT_START, POINT_END = "<|point_start|>", "<|point_end|>"
VERBS: tuple[str, ...] = ("Kill", "Mine", "Approach", "Explore", "right click", "move to", "no-op")
VERBS_WITHOUT_POINT = frozenset({"Explore", "no-op"})
POINT_SCALE = 1000  # points run 0..POINT_SCALE-1

# Spellings models write for the same verb.
_VERB_BY_SPELLING = {
    **{verb.lower(): verb for verb in VERBS},
    "right-click": "right click", "no_op": "no-op", "noop": "no-op", "no op": "no-op",
}
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_GROUNDING = re.compile(
    rf"""^\s*(?P<verb>[^<]*?)\s*
    (?:{re.escape(OBJECT_REF_START)}(?P<label>.*?){re.escape(OBJECT_REF_END)})?\s*
    (?:{re.escape(POINT_START)}\s*\(?\s*(?P<x>{_NUM})\s*,\s*(?P<y>{_NUM})\s*\)?\s*{re.escape(POINT_END)})?\s*$""",
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class GroundingAction:
    verb: str
    label: str | None = None
    point: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.verb not in VERBS:
            raise ValueError(f"unknown grounding verb {self.verb!r}")
        if (self.point is None) != (self.verb in VERBS_WITHOUT_POINT):
            raise ValueError(f"{self.verb!r} {'carries no' if self.point else 'needs a'} point")
        if self.point is not None and not all(0 <= v < POINT_SCALE for v in self.point):
            raise ValueError(f"point {self.point} outside 0..{POINT_SCALE - 1}")

    def format(self) -> str:
        text = f"{TAG} {self.verb}"
        if self.label:
            text += f" {OBJECT_REF_START}{self.label}{OBJECT_REF_END}"
        if self.point is not None:
            text += f"{'' if self.label else ' '}{POINT_START}({self.point[0]},{self.point[1]}){POINT_END}"
        return text


def parse_grounding(text: str) -> GroundingAction | ParseError:
    """The last `Grounding:` line of `text` (or all of `text` without a tag). Never raises.

    Lenient: verbs in any case ("right-click", "no_op" too), spaces anywhere, a point
    with or without parentheses, decimals rounded. A point after Explore or no-op is
    ignored, since those verbs act on no place.
    """
    start = text.rfind(TAG)
    body = text if start < 0 else text[start + len(TAG):].split("\n", 1)[0]
    match = _GROUNDING.match(body)
    if match is None:
        return ParseError("not `VERB [<|object_ref_start|>LABEL<|object_ref_end|>][<|point_start|>(X,Y)<|point_end|>]`", text)
    verb = _VERB_BY_SPELLING.get(" ".join(match["verb"].lower().split()))
    if verb is None:
        return ParseError(f"unknown grounding verb {match['verb']!r}", text)
    label = (match["label"] or "").strip() or None
    if verb in VERBS_WITHOUT_POINT:
        return GroundingAction(verb, label)
    if match["x"] is None:
        return ParseError(f"{verb!r} needs a point", text)
    x, y = float(match["x"]), float(match["y"])
    if not all(0 <= v < POINT_SCALE - 0.5 for v in (x, y)):  # also rejects inf before round() sees it
        return ParseError(f"point ({match['x']},{match['y']}) outside 0..{POINT_SCALE - 1}", text)
    return GroundingAction(verb, label, (round(x), round(y)))


def point_to_pixel(point: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """The spec's mapping, pixel = ceil(X * width / 1000), in exact integer arithmetic.
    Note that it can give `width` (one past the last column) for X near 999."""
    x, y = point
    return -(-x * width // POINT_SCALE), -(-y * height // POINT_SCALE)


def pixel_to_point(pixel: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """The inverse used here: X = floor(pixel * 1000 / width), capped at 999.

    Round trips (checked in tests, per axis of size S):
      pixel -> point -> pixel is exact for S <= 1000 and within 1 for S <= 2000;
      point -> pixel -> point is within 1 for S >= 500 (below that, several points
      share a pixel and no inverse can do better).
    """
    px, py = pixel
    return min(px * POINT_SCALE // width, POINT_SCALE - 1), min(py * POINT_SCALE // height, POINT_SCALE - 1)
