"""Out-of-range counts and --out paths of the wrong kind are refused by argparse, naming the flag."""

import pytest

from crossagent.cli import build_parser


def refused(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


COUNTED = [  # (command, the count flag to break)
    (["bench", "--agent", "random", "--out", "o"], "--workers"),
    (["bench", "--agent", "random", "--out", "o"], "--trials"),
    (["crafter-score", "--agent", "random", "--out", "o"], "--workers"),
    (["crafter-score", "--agent", "random", "--out", "o"], "--episodes"),
    (["tasks", "validate"], "--workers"),
    (["tasks", "generate"], "--workers"),
    (["level-table"], "--workers"),
    (["level-table"], "--trials"),
    (["data", "record", "--out", "o"], "--workers"),
    (["data", "record", "--out", "o"], "--trials"),
    (["data", "record", "--out", "o"], "--per-category"),
    (["eval-model", "--model", "m", "--out", "o"], "--trials"),
]


@pytest.mark.parametrize("value", ["0", "-3"])
@pytest.mark.parametrize("command, flag", COUNTED)
def test_counts_below_one_are_refused(command, flag, value, capsys):
    err = refused([*command, flag, value], capsys)
    assert f"argument {flag}: expected a positive integer, got '{value}'" in err


FOLDERS_OUT = [
    ["bench", "--agent", "random"],
    ["report"],
    ["crafter-score", "--agent", "random"],
    ["tasks", "validate"],
    ["level-table"],
    ["data", "record"],
    ["data", "label", "--data", "d"],
    ["eval-model", "--model", "m"],
    ["grpo"],
    ["executors", "train", "--data", "d"],
]


@pytest.mark.parametrize("command", FOLDERS_OUT)
def test_an_out_folder_that_is_a_file_is_refused(command, tmp_path, capsys):
    a_file = tmp_path / "results.txt"
    a_file.write_text("")
    err = refused([*command, "--out", str(a_file)], capsys)
    assert f"argument --out: {a_file} is a file, not a directory" in err
    err = refused([*command, "--out", str(a_file / "run")], capsys)
    assert f"argument --out: {a_file} is a file, not a directory" in err


@pytest.mark.parametrize("command", [
    ["replay", "--results", "r", "--agent", "random", "--task", "t", "--trial", "0"],
    ["tasks", "generate"],
    ["mc", "convert-vpt", "rec.jsonl"],
])
def test_an_out_file_that_is_a_folder_is_refused(command, tmp_path, capsys):
    err = refused([*command, "--out", str(tmp_path)], capsys)
    assert f"argument --out: {tmp_path} is a directory, not a file" in err
