"""Video frames through PyAV (FFmpeg's libraries), one RGB array at a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np


def iter_video_frames(path: str | Path) -> Iterator[np.ndarray]:
    """The frames of the first video stream as (height, width, 3) uint8 arrays, decoded lazily:
    a VPT clip of a minute is 1200 frames, too many to hold decoded at once."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
    except av.FFmpegError as error:
        raise ValueError(f"{path}: cannot decode the video ({error})") from None
