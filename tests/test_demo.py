"""The README's main job, end to end with small settings (slow: 10-20 minutes on 2 cores)."""

import json

import pytest

from crossagent.cli import main

AGENTS = {"expert", "random", "sft-all-in-one@slow", "sft-all-in-one@fast", "sft-all-in-one@dynamic"}


@pytest.mark.slow
@pytest.mark.timeout(2400)  # an untrained model runs every mini task to its budget, in three modes
def test_demo_runs_every_stage_and_writes_the_report(tmp_path, capsys):
    args = ["demo", "--out", str(tmp_path), "--per-category", "2", "--record-trials", "1", "--sft-steps", "10",
            "--eval-trials", "1"]
    assert main(args) == 0
    summaries = json.loads((tmp_path / "summary.json").read_text())["summaries"]
    assert {s["agent"] for s in summaries} == AGENTS
    assert all(s["overall"]["episodes"] == 30 for s in summaries)  # the mini set, 1 trial, every agent
    expert = next(s for s in summaries if s["agent"] == "expert")
    assert expert["overall"]["asr"] >= 0.9
    facts = json.loads((tmp_path / "demo.json").read_text())
    assert facts["sft"]["steps"] == 10 and set(facts["eval_speed"]) == {"slow", "fast", "dynamic"}
    assert facts["data"]["mix"] > 0
    assert (tmp_path / "summary.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "model" / "sft" / "loss_curve.png").exists()  # the demo logs the loss every 10 steps
    capsys.readouterr()
    assert main(args) == 0  # a re-run finds every stage done
    assert capsys.readouterr().out.count("done before") == 7
    assert main([*args[:-4], "--sft-steps", "12", "--eval-trials", "1"]) == 2  # other settings: refused
    assert "sft.max_steps: 10 -> 12" in capsys.readouterr().err
