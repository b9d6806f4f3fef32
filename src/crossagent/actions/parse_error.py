"""The value every action parser (Crafter levels, Minecraft codecs) returns instead of raising."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParseError:
    """Why `text` could not be read. Parsers return it so that a model's bad reply
    is data to score (e.g. a format penalty), not an exception to catch."""

    reason: str
    text: str
