"""`crossagent mc ...`: Minecraft (OpenHA/VPT) format tools.

  convert-vpt FILE.jsonl      a VPT recording as env actions and text actions
  build-dataset INPUT... --out DIR
                              VPT recordings (jsonl + mp4) as Chain-of-Action SFT examples
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from crossagent.actions.minecraft.profile import PROFILES, profile_named
from crossagent.actions.minecraft.prompts import OUTPUT_FORMATS
from crossagent.actions.minecraft.vpt import convert_vpt_file
from crossagent.arguments import output_dir, output_file
from crossagent.data.builders import FilterReport
from crossagent.data.vpt_dataset import VptDatasetSettings, build_vpt_dataset, find_recordings
from crossagent.progress import quiet_library_bars


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("mc", help="Minecraft (OpenHA/VPT) format tools")
    actions = parser.add_subparsers(dest="mc_command", required=True)

    convert = actions.add_parser("convert-vpt", help="VPT jsonl frames -> env actions and text actions")
    convert.add_argument("file", help="a VPT recording's .jsonl")
    convert.add_argument("--out", type=output_file, help="write JSON lines here instead of printing")
    convert.add_argument("--text-only", action="store_true", help="print only the `Action:` lines")
    _add_profile(convert, default="crossagent")
    convert.set_defaults(run=_convert)

    build = actions.add_parser("build-dataset", help="VPT recordings -> Chain-of-Action SFT dataset (resumable)")
    build.add_argument("inputs", nargs="+", help=".jsonl recordings or folders of them (NAME.mp4 beside each is read)")
    build.add_argument("--out", type=output_dir, required=True, help="output folder: dataset/ (for `crossagent` SFT), report.json")
    _add_profile(build, default="openha")
    build.add_argument("--formats", default=",".join(OUTPUT_FORMATS), help=f"comma-separated, of {', '.join(OUTPUT_FORMATS)}")
    build.add_argument("--history", type=int, default=VptDatasetSettings.history, help="past frames shown per example")
    build.add_argument("--keep-noop", type=float, default=0.0, help="share of no-op frames kept")
    build.add_argument("--instruction", default=VptDatasetSettings.instruction, help="the task every example states")
    build.add_argument("--image-width", type=int, help="resize frames to this width (default: as recorded)")
    build.add_argument("--seed", type=int, default=0)
    build.set_defaults(run=_build_dataset)


def _add_profile(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default=default,
                        help="format profile: crossagent (canonical) or openha (the released encoders' bytes)")


def _convert(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.exists():
        raise FileNotFoundError(f"recording {path} does not exist")
    frames = convert_vpt_file(path, profile_named(args.profile))
    lines = [frame["text_action"] for frame in frames] if args.text_only else [json.dumps(frame) for frame in frames]
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
        print(f"{len(frames)} frames -> {args.out}")
    else:
        print("\n".join(lines))
    return 0


def _build_dataset(args: argparse.Namespace) -> int:
    settings = VptDatasetSettings(profile=args.profile, formats=tuple(f for f in args.formats.split(",") if f),
                                  history=args.history, keep_noop=args.keep_noop, instruction=args.instruction,
                                  image_width=args.image_width, seed=args.seed)
    recordings = find_recordings(args.inputs)
    quiet_library_bars()
    # A bar on a terminal; in a log (no TTY) only the one line per recording below.
    with tqdm(total=len(recordings), unit="recording", disable=not sys.stderr.isatty(), dynamic_ncols=True) as bar:
        def done(name: str, report: FilterReport) -> None:
            tqdm.write(f"{name}: {report.kept} examples, rejected {_rules(report)}", file=sys.stderr)
            bar.update()

        dataset, total = build_vpt_dataset(recordings, args.out, settings, on_recording=done)
    print(f"{total.kept} examples from {len(recordings)} recordings -> {Path(args.out) / 'dataset'}")
    print(f"rejected: {_rules(total)}")
    if len(dataset):
        example = dataset[0]
        print(f"first example ({example['format']}, {example['recording']} frame {example['frame']}, "
              f"{len(example['images'])} images):")
        for message in json.loads(example["messages"]):
            texts = [item.get("text", "<image>") if item["type"] == "text" else "<image>" for item in message["content"]]
            print(f"  [{message['role']}] {' '.join(texts)!r}")
    return 0


def _rules(report: FilterReport) -> str:
    return ", ".join(f"{rule} {count}" for rule, count in report.rejected.items())
