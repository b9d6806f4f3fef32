"""`oracle:latent`: the expert's next chunk, encoded by the codebook and decoded by the latent executor; the
level table's latent row (opt-in, one row whatever the executors)."""

from __future__ import annotations

import pytest

from crossagent.agents.oracle import OraclePolicy
from crossagent.agents.registry import make_agent, require_known_agent
from crossagent.bench.runner import _settings, run_benchmark
from crossagent.cli import main
from crossagent.executors.registry import Executors
from crossagent.tasks.suite import load_suite

TASK = "embodied.collect_coal.far.w16"


@pytest.mark.parametrize("folder", ["checkpoints", "view_checkpoints"])
def test_the_latent_oracle_runs_an_episode_through_the_latent_executor(folder, request, tmp_path):
    require_known_agent("oracle:latent")
    run = run_benchmark("oracle:latent", [load_suite().task(TASK)], 1, 1, tmp_path / "results.sqlite", "crafter-v1",
                        progress=False, executors=Executors("scripted", request.getfixturevalue(folder)))
    assert run.ran == 1 and run.errors == 0
    shares = run.summary.overall.executed_share
    assert shares["latent"] > 0.9  # every step ran a code (a rare invalid one waits)
    assert 1.0 <= run.summary.overall.steps_per_call <= 4.0


def test_the_oracle_writes_the_code_of_the_experts_next_chunk(checkpoints):
    agent = make_agent("oracle:latent", Executors("scripted", checkpoints))
    assert agent.policy.encoder is agent.executors.latent()
    with pytest.raises(ValueError, match="latent encoder"):
        OraclePolicy("latent")


def test_latent_episodes_are_keyed_by_the_codebook_whatever_the_executors(checkpoints):
    for kind in ("scripted", "learned"):
        assert set(_settings("oracle:latent", Executors(kind, checkpoints))) == {"agent", "executors", "checkpoint"}


def test_the_level_table_adds_one_latent_row_when_asked(checkpoints, tmp_path):
    assert main(["level-table", "--suite", TASK, "--trials", "1", "--workers", "1", "--out", str(tmp_path),
                 "--levels", "latent,raw", "--executors", "scripted,learned", "--executors-dir", str(checkpoints)]) == 0
    rows = [line.split(" | ")[0].removeprefix("| ") for line in (tmp_path / "level_table.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| Level")]
    assert rows == ["raw", "latent"]


def test_a_missing_codebook_stops_the_table_before_any_episode(tmp_path, capsys):
    assert main(["level-table", "--suite", TASK, "--trials", "1", "--workers", "1", "--out", str(tmp_path / "t"),
                 "--levels", "latent", "--executors-dir", str(tmp_path / "none")]) == 2
    assert "crossagent executors train-latent" in capsys.readouterr().err
