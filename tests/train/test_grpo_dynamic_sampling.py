"""Dynamic sampling: groups whose returns are all equal carry no signal, so GRPO rolls out further batches
of tasks until it has `tasks_per_batch` groups that differ, and trains on those only."""

from __future__ import annotations

import math

import torch

from crossagent.models.loading import load_model
from crossagent.train import grpo
from crossagent.train.curriculum import informative_groups
from crossagent.train.grpo import train
from crossagent.train.rollouts import collect_rollouts

from .conftest import tiny_config


def rig_returns(monkeypatch, informative: set[int]) -> None:
    """Real rollouts, with returns set per group: member index where `informative`, else 0 for everyone."""
    def rigged(specs, sampler, settings, seed):
        batch = collect_rollouts(specs, sampler, settings, seed)
        for episode in batch.episodes:
            episode.episode_return = float(episode.spec.member) if episode.spec.group in informative else 0.0
        return batch

    monkeypatch.setattr(grpo, "collect_rollouts", rigged)


def parameters(path) -> dict[str, torch.Tensor]:
    model, _ = load_model(path)
    return {name: value.detach().clone() for name, value in model.named_parameters()}


def test_more_rounds_until_enough_groups_differ_and_only_those_are_trained_on(tiny_path, tmp_path, monkeypatch):
    # 2 groups per round: round 0 (groups 0, 1) is flat, round 1 has group 3, round 2 groups 4 and 5.
    rig_returns(monkeypatch, informative={3, 4, 5})
    result = train(tiny_config(tiny_path, tmp_path / "run", updates=1, dynamic_sampling=True, sampling_rounds=4,
                               kl_coef=0.0, entropy_coef=0.0))
    metrics = result.history[0]
    assert metrics["episodes"] == 3 * 2 * 2  # three rounds, then enough groups: the fourth is never rolled out
    assert metrics["trained_groups"] == 2 and metrics["zero_advantage_groups"] == 0.5
    assert 0 < metrics["trained_turns"] < metrics["turns"]  # the set-aside groups' turns are not trained on
    before, after = parameters(tiny_path), parameters(result.final_model)
    assert any(not torch.equal(before[name], after[name]) for name in before)


def test_no_group_with_a_signal_means_no_update(tiny_path, tmp_path, monkeypatch):
    rig_returns(monkeypatch, informative=set())
    result = train(tiny_config(tiny_path, tmp_path / "run", updates=1, dynamic_sampling=True, sampling_rounds=2))
    metrics = result.history[0]
    assert metrics["episodes"] == 2 * 2 * 2 and metrics["trained_groups"] == 0 and metrics["trained_turns"] == 0
    assert math.isnan(metrics["loss"]) and math.isnan(metrics["grad_norm"])
    before, after = parameters(tiny_path), parameters(result.final_model)
    assert all(torch.equal(before[name], after[name]) for name in before)  # entropy and KL terms did not move it


def test_without_dynamic_sampling_every_group_of_one_round_is_trained_on(tiny_path, tmp_path, monkeypatch):
    rig_returns(monkeypatch, informative=set())
    metrics = train(tiny_config(tiny_path, tmp_path / "run", updates=1)).history[0]
    assert metrics["episodes"] == 2 * 2 and metrics["trained_groups"] == 2 and not math.isnan(metrics["loss"])


def test_informative_groups_are_the_ones_whose_returns_differ():
    class Episode:
        def __init__(self, group, episode_return):
            self.spec = type("Spec", (), {"group": group})()
            self.episode_return = episode_return

    episodes = [Episode(0, 1.0), Episode(0, 1.0), Episode(1, 0.0), Episode(1, 1.0), Episode(2, -0.1), Episode(2, 0.0)]
    assert informative_groups(episodes) == [1, 2]
