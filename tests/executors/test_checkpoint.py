"""Learned executors on disk: a round trip acts the same; a missing or damaged checkpoint says so."""

from __future__ import annotations

import json

import pytest

from crossagent.executors.checkpoint import CONFIG, WEIGHTS, load_policy, save_policy
from crossagent.executors.learned import LearnedExecutor
from crossagent.executors.registry import Executors
from tests.executors.conftest import small_policy
from tests.executors.test_learned_executors import ACTIONS, drive, game


@pytest.mark.parametrize("level", sorted(ACTIONS))
def test_a_saved_and_loaded_executor_takes_the_same_actions(level, tmp_path):
    policy = small_policy(level, seed=5)
    save_policy(policy, tmp_path / level)
    loaded = load_policy(tmp_path / level, level)
    runs = []
    for executor in (LearnedExecutor(policy), LearnedExecutor(loaded)):
        env, state = game()
        runs.append(drive(executor.execute(ACTIONS[level], state, 64), env))
    assert runs[0] == runs[1]


def test_a_missing_checkpoint_names_the_command_that_makes_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="crossagent executors train"):
        Executors("learned", tmp_path / "nowhere").execute_fn("motion")


def test_scripted_levels_need_no_checkpoint(tmp_path):
    from crossagent.actions import raw, skill

    assert Executors("learned", tmp_path).execute_fn("raw") is raw.execute
    assert Executors("scripted", tmp_path).execute_fn("skill") is skill.execute


def test_damaged_checkpoints_are_refused_with_the_reason(tmp_path):
    save_policy(small_policy("skill"), tmp_path / "skill")
    (tmp_path / "skill" / WEIGHTS).write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="damaged"):
        load_policy(tmp_path / "skill")
    (tmp_path / "skill" / CONFIG).write_text("{")
    with pytest.raises(ValueError, match="damaged"):
        load_policy(tmp_path / "skill")
    (tmp_path / "skill" / CONFIG).write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(ValueError, match="not a learned executor"):
        load_policy(tmp_path / "skill")


def test_a_checkpoint_of_another_level_is_refused(tmp_path):
    save_policy(small_policy("motion"), tmp_path / "skill")
    with pytest.raises(ValueError, match="holds the motion executor"):
        load_policy(tmp_path / "skill", "skill")
