"""Config dataclasses as argparse options: flags, types, help from the field comments, defaults."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from crossagent.cli_options import add_options, config_from_args, field_comments


@dataclass
class Settings:
    model: str  # where the model is
    out: Path = Path("runs/x")  # run directory
    steps: int = 3
    rate: float = 0.5  # share of steps, 50% by default
    server: str | None = None  # None: in-process
    cache: Path | None = None
    use_image: bool = True  # read the image
    observe: Literal["image", "text", "both"] = "both"
    seeds: list[int] = field(default_factory=lambda: [0])  # not an option: skipped below


@dataclass
class MoreSettings(Settings):
    extra: int = 1  # declared in a subclass
    # said above the field, on
    # two lines
    above: int = 2


def parser_for(config_class=Settings, **kwargs) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    add_options(commands.add_parser("run"), config_class, skip=("seeds",), **kwargs)
    return parser


def test_defaults_types_and_overrides():
    args = parser_for().parse_args(["run", "--model", "m"])
    assert config_from_args(args, Settings) == Settings(model="m")
    args = parser_for().parse_args(["run", "--model", "m", "--out", "o", "--steps", "7", "--rate", "0.25",
                                    "--server", "http://h/v1", "--cache", "c", "--no-use-image", "--observe", "text"])
    settings = config_from_args(args, Settings, seeds=[1, 2])
    assert settings == Settings("m", Path("o"), 7, 0.25, "http://h/v1", Path("c"), False, "text", [1, 2])
    assert isinstance(settings.out, Path) and isinstance(settings.steps, int)


def test_bad_values_and_missing_required_fields_are_usage_errors(capsys):
    for argv in (["run"], ["run", "--model", "m", "--steps", "x"], ["run", "--model", "m", "--observe", "both2"]):
        with pytest.raises(SystemExit):
            parser_for().parse_args(argv)
    assert "invalid choice: 'both2'" in capsys.readouterr().err


def test_rename_keeps_the_field_name_as_destination():
    args = parser_for(rename={"out": "--run-dir", "model": "-m"}).parse_args(["run", "-m", "m", "--run-dir", "d"])
    assert config_from_args(args, Settings) == Settings(model="m", out=Path("d"))


def test_help_is_the_field_comment_with_its_default():
    subparser = parser_for()._subparsers._group_actions[0].choices["run"]
    text = " ".join(subparser.format_help().split())
    assert "--model MODEL where the model is" in text
    assert "--out OUT run directory (default: runs/x)" in text
    assert "--steps STEPS (default: 3)" in text
    assert "--rate RATE share of steps, 50% by default (default: 0.5)" in text
    assert "--use-image, --no-use-image read the image (default: True)" in text
    assert "--observe {image,text,both} (default: both)" in text
    assert "--seeds" not in text and text.count("(default:") == 7


def test_comments_come_from_the_class_and_its_bases():
    comments = field_comments(MoreSettings)
    assert comments["extra"] == "declared in a subclass" and comments["server"] == "None: in-process"
    assert "steps" not in comments and "cache" not in comments
    assert comments["above"] == "said above the field, on two lines"
    args = parser_for(MoreSettings).parse_args(["run", "--model", "m", "--extra", "5"])
    assert config_from_args(args, MoreSettings) == MoreSettings(model="m", extra=5)
