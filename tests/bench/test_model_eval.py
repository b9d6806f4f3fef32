"""A model checkpoint on the benchmark: lockstep batched episodes, stored per mode, resumable."""

import argparse
from dataclasses import replace

import pytest
import torch

from crossagent.bench import model_eval
from crossagent.bench.model_eval import evaluate_model
from crossagent.bench.results_store import RESULTS_FILE, ResultsStore
from crossagent.models.generation import GenerationSettings
from crossagent.models.tiny_vlm import create_tiny_model
from crossagent.tasks.splits import heldout_tasks
from crossagent.tasks.suite import load_suite


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    return str(create_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def test_eval_model_stores_every_mode_and_resumes(tiny, tmp_path):
    suite = load_suite()
    tasks = [replace(task, budget=12) for task in suite.mini[:3]]
    settings = GenerationSettings(max_new_tokens=8)
    speeds = evaluate_model(tiny, "tiny", "mixed", ["slow", "dynamic"], tasks, 1, suite.name, suite.mini_ids, tmp_path,
                            slots=3, settings=settings, progress=False)
    assert {mode: s.episodes for mode, s in speeds.items()} == {"slow": 3, "dynamic": 3}
    assert speeds["slow"].generate_calls <= 12 + 3  # one batched call per step for all waiting episodes
    assert speeds["slow"].replies >= 3 * 12 - 3
    with ResultsStore(tmp_path / RESULTS_FILE) as store:
        rows = store.episodes()
    assert sorted({row.agent for row in rows}) == ["tiny@dynamic", "tiny@slow"] and len(rows) == 6
    for row in rows:
        stats = row.extra
        assert stats["steps"] == row.steps and stats["calls"] >= 1
        assert sum(stats["executed"].values()) == row.steps  # every step counted, invalid replies included
    again = evaluate_model(tiny, "tiny", "mixed", ["slow", "dynamic"], tasks, 1, suite.name, suite.mini_ids, tmp_path,
                           slots=3, settings=settings, progress=False)
    assert all(s.episodes == 0 for s in again.values())


def test_unknown_modes_are_refused(tiny, tmp_path):
    suite = load_suite()
    with pytest.raises(ValueError, match="mode 'turbo'"):
        evaluate_model(tiny, "tiny", "mixed", ["turbo"], suite.mini[:1], 1, suite.name, (), tmp_path)


def test_cli_evaluates_the_heldout_tasks(monkeypatch, tmp_path):
    """`--suite heldout`: the tasks GRPO never trains on (how a GRPO run is evaluated)."""
    seen = {}

    class Stop(Exception):
        pass

    def evaluated(model_path, name, output_format, modes, tasks, *rest):
        seen.update(name=name, modes=modes, tasks=tasks)
        raise Stop

    monkeypatch.setattr(model_eval, "evaluate_model", evaluated)
    parser = argparse.ArgumentParser()
    model_eval.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval-model", "--model", "runs/grpo/final", "--out", str(tmp_path), "--suite", "heldout",
                              "--modes", "dynamic"])
    with pytest.raises(Stop):
        args.run(args)
    assert seen == {"name": "final", "modes": ["dynamic"], "tasks": heldout_tasks(load_suite())}
