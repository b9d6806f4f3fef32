"""Pieces of Lark grammars (llguidance's dialect) for the level modules' `grammar()`: constrained
decoding builds a reply's grammar from the same words the parsers read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

_SPECIAL_TOKEN = re.compile(r"^<\|[a-z_0-9]+\|>$")


def literal(text: str) -> str:
    """`text` as a Lark string (JSON escapes are Lark's)."""
    return json.dumps(text)


def one_of(texts: Iterable[str]) -> str:
    """Any one of `texts`, longest first (so no alternative hides a longer one in a reader that takes the first)."""
    texts = sorted(set(texts), key=lambda text: (-len(text), text))
    if not texts:
        raise ValueError("a choice needs at least one alternative")
    return "(" + " | ".join(literal(text) for text in texts) + ")"


def integers(low: int, high: int) -> str:
    """The decimal numbers low..high as written by str(), each an alternative."""
    if low > high:
        raise ValueError(f"empty range {low}..{high}")
    return one_of(str(number) for number in range(low, high + 1))


def special_token(token: str) -> str:
    """A tokenizer's special token (`<|point_start|>`) as one token: llguidance matches it by name, never
    spelled out character by character."""
    if not _SPECIAL_TOKEN.match(token):
        raise ValueError(f"{token!r} is not a special token of the form <|name|>")
    return token
