import argparse
import json

import imageio.v3 as iio
import pytest

from crossagent.agents import registry
from crossagent.agents.random_agent import RandomAgent
from crossagent.bench import cli
from crossagent.bench.results_store import ResultsStore


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="crossagent")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.run(args)


def test_bench_end_to_end_with_two_workers(tmp_path, suite_file, capsys):
    out = tmp_path / "out"
    assert run_cli("bench", "--agent", "random", "--suite", "full", "--suite-file", suite_file,
                   "--trials", 2, "--workers", 2, "--out", out) == 0
    table = capsys.readouterr().out
    assert "overall" in table and "8 episodes run (0 raised), 0 already stored" in table
    for name in ("results.sqlite", "summary.md", "summary.json", "summary.png"):
        assert (out / name).exists()
    assert "| random | combat | 2 | 4 | 0 | 5.0 | 5.0 | 100.0 | 100.0 ± 0.0 |" in (out / "summary.md").read_text()
    with ResultsStore(out / "results.sqlite") as store:
        assert len(store.episodes("random", "tiny")) == 8
        assert store.mini_ids("tiny") == ("wood-0", "survive-0")

    # A selection of stored episodes: nothing runs, the JSON covers only the selection.
    assert run_cli("bench", "--agent", "random", "--suite", "combat", "--suite-file", suite_file,
                   "--trials", 2, "--workers", 2, "--out", out, "--json") == 0
    (summary,) = json.loads(capsys.readouterr().out)["summaries"]
    assert summary["overall"]["tasks"] == 2 and summary["overall"]["asr"] == 1.0
    assert [c["category"] for c in summary["categories"]] == ["combat"]

    assert run_cli("report", "--out", out, "--json") == 0
    (summary,) = json.loads(capsys.readouterr().out)["summaries"]
    assert summary["overall"]["episodes"] == 8 and summary["overall"]["asr_mini"] == 0.5

    assert run_cli("replay", "--results", out, "--agent", "random", "--task", "survive-1", "--trial", 1,
                   "--suite-file", suite_file, "--size", 64, "--out", tmp_path / "ep.gif") == 0
    assert iio.imread(tmp_path / "ep.gif", index=None).shape[0] == 6


def test_bench_names_bad_selections(tmp_path, suite_file):
    with pytest.raises(KeyError, match="no task with id 'nope'"):
        run_cli("bench", "--agent", "random", "--suite", "survive-0,nope", "--suite-file", suite_file,
                "--out", tmp_path)
    with pytest.raises(ValueError, match="selects no task"):
        run_cli("bench", "--agent", "random", "--suite", "craft", "--suite-file", suite_file, "--out", tmp_path)
    with pytest.raises(FileNotFoundError):
        run_cli("report", "--out", tmp_path / "empty")


class CrashOnWood(RandomAgent):
    def reset(self, task, seed):
        if task.id.startswith("wood"):
            raise RuntimeError(f"agent exploded on {task.id}")
        super().reset(task, seed)


def test_bench_exits_non_zero_and_says_so_when_episodes_raised(tmp_path, suite_file, capsys, monkeypatch):
    monkeypatch.setitem(registry.AGENTS, "crashy", CrashOnWood)  # one worker: it runs in this process
    command = ("bench", "--agent", "crashy", "--suite", "full", "--suite-file", suite_file, "--trials", 1,
               "--workers", 1, "--out", tmp_path)
    assert run_cli(*command) == 1
    err = capsys.readouterr().err
    assert "2 of 4 episodes raised" in err and "task 'wood-0' trial 0: RuntimeError: agent exploded on wood-0" in err
    assert "--retry-errors" in err
    assert run_cli(*command, "--json") == 1  # the stored errors still count when nothing runs
    assert "2 of 4 episodes raised" in capsys.readouterr().err


def test_crafter_score_command(tmp_path, capsys):
    assert run_cli("crafter-score", "--agent", "random", "--episodes", 1, "--workers", 1, "--out", tmp_path) == 0
    text = capsys.readouterr().out
    assert "Crafter score (1 episodes" in text and "DreamerV3" in text
    assert (tmp_path / "crafter_score.json").exists() and (tmp_path / "crafter_score.png").exists()
