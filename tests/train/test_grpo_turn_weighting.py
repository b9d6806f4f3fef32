"""The loss weighs every episode the same by default: a group's advantages then cancel in the update, however
many turns each episode took (grpo_loss.turn_weights); `turn_weighting="turn"` weighs every turn 1. A random
subset of each episode's turns (`update_turns_per_episode`) carries its episode's whole weight."""

from __future__ import annotations

import math

import pytest

from crossagent.train import grpo
from crossagent.train.grpo import train
from crossagent.train.rollouts import collect_rollouts
from crossagent.train.turn_batches import encode_turns

from .conftest import tiny_config


def rig_long_failures(monkeypatch) -> None:
    """Real rollouts; in every group member 0 fails (return 0) with all its turns, member 1 succeeds (return 1)
    with its first turn only, as a quick success does."""
    def rigged(specs, sampler, settings, seed):
        batch = collect_rollouts(specs, sampler, settings, seed)
        for episode in batch.episodes:
            episode.episode_return = float(episode.spec.member)
            if episode.spec.member == 1:
                episode.turns = episode.turns[:1]
        return batch

    monkeypatch.setattr(grpo, "collect_rollouts", rigged)


@pytest.mark.parametrize("weighting", ["episode", "turn"])
@pytest.mark.parametrize("turns_per_episode", [0, 1])
def test_the_logged_policy_loss_before_the_step_is_the_weighted_mean_advantage(weighting, turns_per_episode,
                                                                                tiny_path, tmp_path, monkeypatch):
    """With `update_turns_per_episode` 1, each episode trains on one of its turns, weighted to stand for all of
    them: the same loss as the full update here (every turn of an episode has its advantage, and ratio 1)."""
    rig_long_failures(monkeypatch)
    encoded = []
    monkeypatch.setattr(grpo, "encode_turns", lambda turns, mine, *args: encoded.append(len(mine)) or
                        encode_turns(turns, mine, *args))
    # One optimizer step per iteration, so every micro-batch sees ratio 1: policy loss = -weighted mean of A.
    result = train(tiny_config(tiny_path, tmp_path / "run", updates=1, kl_coef=0.0, entropy_coef=0.0,
                               turn_weighting=weighting, output_format="raw", max_episode_steps=4,
                               gradient_accumulation_steps=8, update_turns_per_episode=turns_per_episode))
    metrics = result.history[0]
    assert encoded == [4 if turns_per_episode else metrics["turns"]]  # 2 groups of 2 episodes
    assert metrics["trained_turns"] == encoded[0]  # logged: what sizes a matched SFT on trained examples
    advantage = 1 / math.sqrt(2)  # returns 0 and 1 in a group of two: A = -/+ 0.707
    failed_turns = metrics["turns"] - 2  # per group: the failure's turns, then the success's single turn
    assert failed_turns > 2  # the failures are longer than the successes, or the test shows nothing
    if weighting == "episode":
        assert metrics["policy_loss"] == pytest.approx(0.0, abs=1e-6)
    else:
        expected = -(-advantage * failed_turns + advantage * 2) / metrics["turns"]
        assert metrics["policy_loss"] == pytest.approx(expected, rel=1e-4)


def test_an_unknown_weighting_and_a_negative_turn_limit_are_refused(tiny_path, tmp_path):
    with pytest.raises(ValueError, match="turn_weighting 'reply'"):
        tiny_config(tiny_path, tmp_path / "run", updates=1, turn_weighting="reply")
    with pytest.raises(ValueError, match="update_turns_per_episode must be 0"):
        tiny_config(tiny_path, tmp_path / "run", updates=1, update_turns_per_episode=-1)
