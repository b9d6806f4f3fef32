"""argparse types shared by the sub-commands: a bad value is refused up front, naming its flag."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def positive_int(text: str) -> int:
    """A count of workers, trials, episodes...: 0 or less would run nothing or fall back silently."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def int_in_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse `type`: a whole number from `low` to `high` (no upper bound if None)."""
    bounds = f"from {low} to {high}" if high is not None else f"at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value}: must be {bounds}")
        return value

    return parse


def output_dir(text: str) -> Path:
    """A folder to write into: it need not exist, but neither it nor a folder above it may be a file."""
    path = Path(text)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is a file, not a directory")
    return path


def output_file(text: str) -> Path:
    """A file to write: it may not be an existing folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a directory, not a file")
    return path
