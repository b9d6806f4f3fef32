"""The latent executor keeps the executor interface (actions/executor.py), reads only the text view, and
acts the same after a checkpoint round trip; a missing checkpoint names the command that makes one."""

from __future__ import annotations

import pytest
import torch

from crossagent.actions.executor import Stop, with_budget
from crossagent.actions.latent import Latent
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.text_view import render_text
from crossagent.executors import latent as latent_executor
from crossagent.executors.latent import LatentExecutor
from crossagent.executors.features import stack
from crossagent.executors.latent_model import END, first_view, load_latent, save_latent
from crossagent.executors.registry import Executors
from tests.executors.test_learned_executors import drive, game, sealed_views
from tests.latent.conftest import SMALL


@pytest.fixture(scope="module")
def executor(checkpoints):
    return LatentExecutor(load_latent(checkpoints / "latent"))


@pytest.mark.parametrize("code", range(SMALL.codes))
def test_every_code_yields_valid_actions_and_returns_a_stop(executor, code):
    env, state = game()
    actions, stop = drive(executor.execute(Latent(code), state, 64), env)
    assert all(0 <= action < len(ACTION_NAMES) for action in actions)
    assert isinstance(stop, Stop) and stop.kind in ("done", "budget")
    assert 1 <= len(actions) <= SMALL.chunk


def test_a_code_outside_the_codebook_fails_without_acting(executor):
    env, state = game()
    actions, stop = drive(executor.execute(Latent(SMALL.codes), state, 64), env)
    assert actions == [] and stop.kind == "failed" and f"{SMALL.codes} codes" in stop.reason


def test_it_respects_the_callers_budget(executor):
    env, state = game()
    actions, stop = drive(with_budget(executor.execute(Latent(0), state, 64), 1), env)
    assert len(actions) == 1 and stop.kind in ("done", "budget")


def test_it_reads_nothing_but_the_text_view(executor, monkeypatch):
    env, state = game()
    sealed, calls = sealed_views(monkeypatch, latent_executor, state)
    actions, _ = drive(executor.execute(Latent(1), sealed, 64), env)
    assert len(calls) == len(actions) > 0  # one view per step


def test_a_saved_and_loaded_codebook_codes_and_acts_the_same(executor, tmp_path):
    save_latent(executor.model, tmp_path / "copy")
    loaded = LatentExecutor(load_latent(tmp_path / "copy"))
    chunks = torch.randint(0, END + 1, (50, SMALL.chunk))
    views = stack([first_view(render_text(game()[1]))] * len(chunks))
    assert torch.equal(executor.model.codes_of(chunks, views), loaded.model.codes_of(chunks, views))
    for code in range(SMALL.codes):
        runs = []
        for run in (executor, loaded):
            env, state = game()
            runs.append(drive(run.execute(Latent(code), state, 64), env))
        assert runs[0] == runs[1]


def test_any_executors_kind_runs_latent_from_its_checkpoint_and_a_missing_one_is_named(checkpoints, tmp_path):
    for kind in ("scripted", "learned"):
        assert isinstance(Executors(kind, checkpoints).execute_fn("latent").__self__, LatentExecutor)
    missing = tmp_path / "none"
    with pytest.raises(FileNotFoundError, match=f"{missing / 'latent'}.*crossagent executors train-latent"):
        Executors("scripted", missing).execute_fn("latent")


def test_a_checkpoint_of_another_executor_is_refused(tmp_path):
    from crossagent.executors.checkpoint import save_policy
    from tests.executors.conftest import small_policy

    save_policy(small_policy("motion"), tmp_path / "latent")
    with pytest.raises(ValueError, match="not the latent codebook"):
        load_latent(tmp_path / "latent")
