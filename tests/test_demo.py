"""The README's main job, end to end with small settings (slow: 10-20 minutes on 2 cores)."""

import json

import pytest

from crossagent.cli import main


@pytest.mark.slow
@pytest.mark.timeout(2400)  # an untrained model runs every mini task to its budget, in three modes
def test_demo_runs_every_stage_and_writes_the_report(tmp_path, capsys):
    args = ["demo", "--out", str(tmp_path), "--per-category", "2", "--record-trials", "1", "--sft-steps", "10",
            "--eval-trials", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    for agent in ("expert", "random", "sft-all-in-one@slow", "sft-all-in-one@fast", "sft-all-in-one@dynamic"):
        assert agent in out
    facts = json.loads((tmp_path / "demo.json").read_text())
    assert facts["sft"]["steps"] == 10 and set(facts["eval_speed"]) == {"slow", "fast", "dynamic"}
    assert (tmp_path / "summary.png").exists()
    assert (tmp_path / "model" / "sft" / "loss_curve.png").exists()  # the demo logs the loss every 10 steps
    assert main(args) == 0  # a re-run resumes every stage and runs no new episode
    assert "0 run now" in capsys.readouterr().out
