"""`crossagent mc convert-vpt FILE.jsonl`: a VPT recording as env actions and text actions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from crossagent.actions.minecraft.profile import PROFILES, profile_named
from crossagent.actions.minecraft.vpt import convert_vpt_file


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("mc", help="Minecraft (OpenHA/VPT) format tools")
    actions = parser.add_subparsers(dest="mc_command", required=True)
    convert = actions.add_parser("convert-vpt", help="VPT jsonl frames -> env actions and text actions")
    convert.add_argument("file", help="a VPT recording's .jsonl")
    convert.add_argument("--out", help="write JSON lines here instead of printing")
    convert.add_argument("--text-only", action="store_true", help="print only the `Action:` lines")
    convert.add_argument("--profile", choices=sorted(PROFILES), default="crossagent",
                         help="text form: crossagent (canonical) or openha (the released encoder's bytes)")
    convert.set_defaults(run=_convert)


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
