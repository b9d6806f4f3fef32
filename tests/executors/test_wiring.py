"""`--executors learned` runs the oracles' replies through the learned executors, stored as rows of their own."""

from __future__ import annotations

import pytest

from crossagent.agents.registry import make_agent
from crossagent.cli import main
from crossagent.executors.checkpoint import save_policy
from crossagent.executors.learned import LearnedExecutor
from crossagent.executors.registry import LEARNED_LEVELS, Executors
from crossagent.tasks.suite import load_suite
from tests.executors.conftest import small_policy


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("executors")
    for level in LEARNED_LEVELS:
        save_policy(small_policy(level), folder / level)
    return folder


def test_an_oracle_with_learned_executors_runs_them(checkpoints):
    agent = make_agent("oracle:skill", Executors("learned", checkpoints))
    assert isinstance(agent.executors.execute_fn("skill").__self__, LearnedExecutor)
    with pytest.raises(ValueError, match="runs no executors"):
        make_agent("expert", Executors("learned", checkpoints))


def test_level_table_puts_learned_rows_next_to_the_scripted_ones(checkpoints, tmp_path):
    easy = [t.id for t in load_suite().tasks if t.world_seed in (0, 1) and t.difficulty == "easy"][:1]
    assert main(["level-table", "--suite", ",".join(easy), "--trials", "1", "--workers", "1", "--out", str(tmp_path),
                 "--executors", "scripted,learned", "--executors-dir", str(checkpoints)]) == 0
    rows = [line.split(" | ")[0].removeprefix("| ") for line in (tmp_path / "level_table.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| Level")]
    assert rows == ["raw", "motion", "motion + learned", "grounding", "grounding + learned", "skill", "skill + learned"]


def test_a_missing_checkpoint_stops_the_table_before_any_episode(tmp_path, capsys):
    assert main(["level-table", "--suite", "mini", "--trials", "1", "--workers", "1", "--out", str(tmp_path / "t"),
                 "--executors", "learned", "--executors-dir", str(tmp_path / "none")]) == 2
    assert "crossagent executors train" in capsys.readouterr().err


def test_scripted_rows_are_keyed_as_before_whatever_the_checkpoints_folder(checkpoints):
    from crossagent.bench.runner import _settings

    assert _settings("oracle:skill", Executors("scripted", checkpoints)) == {"agent": "oracle:skill"}
    assert _settings("oracle:raw", Executors("learned", checkpoints)) == {"agent": "oracle:raw"}
    assert set(_settings("oracle:skill", Executors("learned", checkpoints))) == {"agent", "executors", "checkpoint"}
