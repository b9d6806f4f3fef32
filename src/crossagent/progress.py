"""The progress bar of every long command: tqdm with its rate and ETA. On a terminal it redraws in
place; into a log file (not a TTY) it writes one line every LOG_INTERVAL seconds instead of one per
redraw."""

from __future__ import annotations

import sys
from typing import IO

from tqdm import tqdm

LOG_INTERVAL = 30.0  # seconds between lines when the output is not a terminal


class _LinePerUpdate:
    """A stream that turns tqdm's carriage-return redraws into whole lines."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(total: int | None, description: str, enabled: bool = True, unit: str = "ep",
                 stream: IO[str] | None = None) -> tqdm:
    stream = stream or sys.stderr
    if stream.isatty():
        return tqdm(total=total, desc=description, unit=unit, disable=not enabled, dynamic_ncols=True, file=stream)
    return tqdm(total=total, desc=description, unit=unit, disable=not enabled, file=_LinePerUpdate(stream),
                mininterval=LOG_INTERVAL, ncols=100)


def quiet_library_bars() -> None:
    """Our commands draw their own progress bar; `datasets` would add one per saved shard, and
    transformers one per checkpoint loaded or saved (every SFT checkpoint, in a log file too)."""
    from datasets import disable_progress_bars
    from transformers.utils import logging

    disable_progress_bars()
    logging.disable_progress_bar()
