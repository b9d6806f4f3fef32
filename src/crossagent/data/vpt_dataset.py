"""VPT recordings -> Chain-of-Action SFT examples (`crossagent mc build-dataset`).

A recording is `NAME.jsonl` (one VPT frame per line) and, when present, `NAME.mp4` (its
frames at 20 per second). Every frame becomes one example per output format:
  raw         `Action: …`                 the text action
  motion_coa  `Motion: …` then `Action: …`  the labelled motion, then the text action
written in a format profile (default `openha`, the bytes the released models were trained on).
Examples carry the chat messages and images the project's SFT reads (train/sft.py).

Rejection filter (minecraft-formats.md section 10; the rules and report of data/builders.py),
first broken rule counted:
action_lines (not exactly one `Action:` line), upper_lines (an upper level twice), unparseable
(a line that does not parse), action_mismatch (the `Action:` line decodes to another action
than the recorded one, e.g. a fractional mouse delta rounded to whole pixels), noop (the
recorded action does nothing; kept at the rate `keep_noop`, default 0).

Resumable: each finished recording is saved under OUT/recordings/NAME with its report, and
a re-run skips those; the whole dataset (OUT/dataset) is assembled from them at the end.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
from datasets import Dataset, Features, Image, List, Value, concatenate_datasets, load_from_disk

from crossagent.actions.minecraft.coa import LEVELS, format_chain_of_action, parse_chain_of_action
from crossagent.actions.minecraft.env_action import actions_equal, is_null
from crossagent.actions.minecraft.motion_labeller import format_motion, frame_motions
from crossagent.actions.minecraft.profile import McProfile, profile_named
from crossagent.actions.minecraft.prompts import OUTPUT_FORMATS, build_messages
from crossagent.actions.minecraft.text_action import TextAction
from crossagent.actions.minecraft.vpt import read_vpt_jsonl, text_actions, vpt_to_env_actions
from crossagent.actions.parse_error import ParseError
from crossagent.data.builders import FilterReport
from crossagent.data.video import iter_video_frames

LEVELS_OF_FORMAT = {"raw": ("action",), "motion_coa": ("motion", "action")}
FEATURES = Features({
    "messages": Value("string"), "images": List(Image()), "format": Value("string"), "levels": List(Value("string")),
    "recording": Value("string"), "frame": Value("int32"), "action": Value("string"), "profile": Value("string"),
})
SETTINGS_FILE, REPORT_FILE = "settings.json", "report.json"
# Decoded cameras are compared in degrees; a text action is exact to float rounding.
CAMERA_TOLERANCE_DEG = 1e-9


@dataclass(frozen=True)
class VptDatasetSettings:
    profile: str = "openha"
    formats: tuple[str, ...] = OUTPUT_FORMATS
    history: int = 3  # past frames (image and reply) shown before the current one; needs the video
    keep_noop: float = 0.0  # share of no-op frames kept (CrossAgent keeps none)
    instruction: str = "Play Minecraft."
    image_width: int | None = None  # resize frames to this width (aspect kept); None keeps the recording's
    seed: int = 0  # the no-op draws depend on it, the recording and the frame only

    def __post_init__(self) -> None:
        profile_named(self.profile)
        unknown = sorted(set(self.formats) - set(OUTPUT_FORMATS))
        if unknown or not self.formats:
            raise ValueError(f"unknown output format(s) {unknown} (known: {', '.join(OUTPUT_FORMATS)})")
        if self.history < 0 or not 0.0 <= self.keep_noop <= 1.0 or (self.image_width is not None and self.image_width < 1):
            raise ValueError("history must be >= 0, keep_noop in [0, 1] and image_width >= 1")


def rejection(reply: str, recorded_action: dict[str, Any], profile: McProfile) -> str | None:
    """The first structural rule `reply` breaks (no-ops are drawn apart), or None."""
    chain = parse_chain_of_action(reply)
    if chain.line_counts.get("action", 0) != 1:
        return "action_lines"
    if any(chain.line_counts.get(level, 0) > 1 for level in LEVELS if level != "action"):
        return "upper_lines"
    if any(isinstance(content, ParseError) for content in chain.levels.values()):
        return "unparseable"
    decoded = chain.levels["action"]
    assert isinstance(decoded, TextAction)
    if not actions_equal(decoded.to_env_action(profile), recorded_action, atol=CAMERA_TOLERANCE_DEG):
        return "action_mismatch"
    return None


def find_recordings(inputs: Sequence[str | Path]) -> list[Path]:
    """The `.jsonl` recordings named, or found (sorted) in the folders named."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += sorted(item.glob("*.jsonl"))
        elif item.is_file() and item.suffix == ".jsonl":
            found.append(item)
        else:
            raise FileNotFoundError(f"{item} is neither a folder nor a .jsonl recording")
    names = [path.stem for path in found]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"two recordings share the name {duplicates[0]!r}; names key the resumable output")
    if not found:
        raise FileNotFoundError(f"no .jsonl recording in {', '.join(map(str, inputs))}")
    return found


def recording_examples(path: Path, settings: VptDatasetSettings) -> tuple[list[dict], FilterReport]:
    """The examples of one recording and what the filter rejected."""
    profile = profile_named(settings.profile)
    frames = read_vpt_jsonl(path)
    actions = vpt_to_env_actions(frames)
    texts = [text.format(profile) for text in text_actions(frames, actions, profile)]
    gui = [frame.get("isGuiOpen") for frame in frames]
    motions = [format_motion(atoms) for atoms in frame_motions(actions, gui if all(isinstance(g, bool) for g in gui)
                                                                else None)]
    images = _frames_of(path, len(frames), settings.image_width)
    report = FilterReport()
    examples = []
    recent: dict[str, deque[tuple[np.ndarray, str]]] = {f: deque(maxlen=settings.history) for f in settings.formats}
    for t, action in enumerate(actions):
        image = next(images, None)
        for output_format in settings.formats:
            lines = {"motion": motions[t], "action": texts[t]}
            reply = format_chain_of_action({level: lines[level] for level in LEVELS_OF_FORMAT[output_format]}, profile)
            rule = rejection(reply, action, profile)
            if rule is None and is_null(action) and _draw(settings, path.stem, t) >= settings.keep_noop:
                rule = "noop"
            if rule is None:
                messages, example_images = build_messages(output_format, settings.instruction,
                                                          list(recent[output_format]), image)
                messages.append({"role": "assistant", "content": [{"type": "text", "text": reply}]})
                examples.append({"messages": json.dumps(messages), "images": [PIL.Image.fromarray(i) for i in example_images],
                                 "format": output_format, "levels": list(LEVELS_OF_FORMAT[output_format]),
                                 "recording": path.stem, "frame": t, "action": texts[t], "profile": profile.name})
                report.kept += 1
            else:
                report.rejected[rule] += 1
            if image is not None and settings.history:  # history shows observations; without video there are none
                recent[output_format].append((image, reply))
    next(images, None)  # lets the video's frame count be checked to its end
    return examples, report


def build_vpt_dataset(recordings: Sequence[Path], out: str | Path, settings: VptDatasetSettings,
                      on_recording: Callable[[str, FilterReport], None] = lambda name, report: None,
                      ) -> tuple[Dataset, FilterReport]:
    """Build (or resume) OUT/recordings/NAME for each recording, then assemble OUT/dataset and
    write OUT/report.json. `on_recording` hears about each recording as it is done (or found done)."""
    out = Path(out)
    _check_settings(out, settings)
    total = FilterReport()
    per_recording: dict[str, dict] = {}
    parts = []
    for path in recordings:
        part = out / "recordings" / path.stem
        if not (part / REPORT_FILE).exists():
            _build_part(path, part, settings)
        report = FilterReport(**json.loads((part / REPORT_FILE).read_text()))
        total.add(report)
        per_recording[path.stem] = report.to_dict()
        parts.append(load_from_disk(str(part)))
        on_recording(path.stem, report)
    dataset = concatenate_datasets(parts) if parts else Dataset.from_list([], features=FEATURES)
    _replace_dir(out / "dataset", lambda tmp: dataset.save_to_disk(str(tmp)))
    (out / REPORT_FILE).write_text(json.dumps({**total.to_dict(), "recordings": per_recording}, indent=1))
    return load_from_disk(str(out / "dataset")), total


def _build_part(path: Path, part: Path, settings: VptDatasetSettings) -> None:
    examples, report = recording_examples(path, settings)

    def write(tmp: Path) -> None:
        Dataset.from_list(examples, features=FEATURES).save_to_disk(str(tmp))
        # Written last: its presence marks the recording as done.
        (tmp / REPORT_FILE).write_text(json.dumps(report.to_dict()))

    _replace_dir(part, write)


def _replace_dir(target: Path, write: Callable[[Path], None]) -> None:
    """Write into a fresh sibling folder, then swap it in: an interruption leaves no half-written target."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    write(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def _check_settings(out: Path, settings: VptDatasetSettings) -> None:
    """Finished recordings are reused only under the settings that built them."""
    path = out / SETTINGS_FILE
    wanted = json.loads(json.dumps(asdict(settings)))
    if path.exists():
        stored = json.loads(path.read_text())
        if stored != wanted:
            changed = sorted(k for k in wanted if stored.get(k) != wanted[k])
            raise ValueError(f"{out} was built with other settings ({', '.join(changed)}); use a new --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=1))


def _frames_of(path: Path, n_frames: int, width: int | None) -> Iterator[np.ndarray]:
    """The recording's video frames, or nothing when it has no video; the count must match the jsonl's."""
    video = path.with_suffix(".mp4")
    if not video.exists():
        return
    count = 0
    for frame in iter_video_frames(video):
        count += 1
        if count > n_frames:
            break
        yield _resized(frame, width)
    if count != n_frames:
        raise ValueError(f"{video} has {'more' if count > n_frames else count} frames, {path.name} has {n_frames}")


def _resized(frame: np.ndarray, width: int | None) -> np.ndarray:
    if width is None or frame.shape[1] == width:
        return frame
    height = max(1, round(frame.shape[0] * width / frame.shape[1]))
    return np.asarray(PIL.Image.fromarray(frame).resize((width, height), PIL.Image.BILINEAR))


def _draw(settings: VptDatasetSettings, recording: str, frame: int) -> float:
    # A string seed is hashed with SHA-512: the same draw in every process and run.
    return random.Random(f"{settings.seed}/noop/{recording}/{frame}").random()
