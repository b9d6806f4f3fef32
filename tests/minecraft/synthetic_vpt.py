"""A tiny synthetic VPT clip, written by the tests themselves: jsonl frames and their mp4.

Twelve frames at 20 per second, 64x48, frame i filled with grey level 20 * i so a decoded
image can be told apart. What each frame does (and what the filter makes of it):
   0  attack stuck from the focusing click (dropped)    -> no-op
   1  w                                                 kept
   2  w + left.control, mouse dx 10                     kept
   3  mouse dx 2.5: half a pixel no text action writes  -> action_mismatch
   4  space then w, in that order                       kept
   5  nothing                                           -> no-op
   6  e (opens the inventory)                           kept
   7  GUI open, mouse dx 20 dy 10                       kept
   8  GUI open, left click                              kept
   9  GUI open, e (closes it)                           kept
  10  nothing                                           -> no-op
  11  attack (a real press), mouse dy -4                kept
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT = 64, 48
N_FRAMES = 12


def _frame(keys=(), dx=0.0, dy=0.0, buttons=(), new_buttons=(), gui=False) -> dict:
    return {
        "mouse": {"x": 320.0, "y": 180.0, "dx": dx, "dy": dy, "scaledX": dx, "scaledY": dy, "dwheel": 0.0,
                  "buttons": list(buttons), "newButtons": list(new_buttons)},
        "keyboard": {"keys": [f"key.keyboard.{k}" for k in keys], "newKeys": [], "chars": ""},
        "isGuiOpen": gui, "isGuiInventory": gui, "hotbar": 0, "yaw": 0.0, "pitch": 0.0,
        "xpos": 0.0, "ypos": 64.0, "zpos": 0.0, "tick": 0, "milli": 1650000000000, "inventory": [],
        "serverTick": 0, "stats": {},
    }


FRAMES = [
    _frame(buttons=[0], new_buttons=[0]),
    _frame(keys=["w"]),
    _frame(keys=["w", "left.control"], dx=10.0),
    _frame(dx=2.5),
    _frame(keys=["space", "w"]),
    _frame(),
    _frame(keys=["e"]),
    _frame(dx=20.0, dy=10.0, gui=True),
    _frame(buttons=[0], new_buttons=[0], gui=True),
    _frame(keys=["e"], gui=True),
    _frame(),
    _frame(dy=-4.0, buttons=[0], new_buttons=[0]),
]


def grey_level(frame: int) -> int:
    return 20 * frame


def write_clip(folder: Path, name: str = "clip", with_video: bool = True, video_frames: int = N_FRAMES) -> Path:
    """Write NAME.jsonl (and NAME.mp4 with `video_frames` frames); returns the jsonl's path."""
    folder.mkdir(parents=True, exist_ok=True)
    jsonl = folder / f"{name}.jsonl"
    jsonl.write_text("".join(json.dumps(frame) + "\n" for frame in FRAMES))
    if with_video:
        with av.open(str(folder / f"{name}.mp4"), "w") as container:
            stream = container.add_stream("libx264", rate=20)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            stream.options = {"crf": "0"}  # lossless luma, so grey levels survive
            for i in range(video_frames):
                image = np.full((HEIGHT, WIDTH, 3), grey_level(i), dtype=np.uint8)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
    return jsonl
