"""The loss weighs every episode the same by default: a group's advantages then cancel in the update, however
many turns each episode took (grpo_loss.turn_weights); `turn_weighting="turn"` weighs every turn 1."""

from __future__ import annotations

import math

import pytest

from crossagent.train import grpo
from crossagent.train.grpo import train
from crossagent.train.rollouts import collect_rollouts

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
def test_the_logged_policy_loss_before_the_step_is_the_weighted_mean_advantage(weighting, tiny_path, tmp_path,
                                                                                monkeypatch):
    rig_long_failures(monkeypatch)
    # One optimizer step per iteration, so every micro-batch sees ratio 1: policy loss = -weighted mean of A.
    result = train(tiny_config(tiny_path, tmp_path / "run", updates=1, kl_coef=0.0, entropy_coef=0.0,
                               turn_weighting=weighting, output_format="raw", max_episode_steps=4,
                               gradient_accumulation_steps=8))
    metrics = result.history[0]
    advantage = 1 / math.sqrt(2)  # returns 0 and 1 in a group of two: A = -/+ 0.707
    failed_turns = metrics["turns"] - 2  # per group: the failure's turns, then the success's single turn
    assert failed_turns > 2  # the failures are longer than the successes, or the test shows nothing
    if weighting == "episode":
        assert metrics["policy_loss"] == pytest.approx(0.0, abs=1e-6)
    else:
        expected = -(-advantage * failed_turns + advantage * 2) / metrics["turns"]
        assert metrics["policy_loss"] == pytest.approx(expected, rel=1e-4)


def test_an_unknown_weighting_is_refused(tiny_path, tmp_path):
    with pytest.raises(ValueError, match="turn_weighting 'reply'"):
        tiny_config(tiny_path, tmp_path / "run", updates=1, turn_weighting="reply")
