"""GRPO's pure pieces against hand-computed numbers: advantages, k3 KL, clipped loss, entropy, the step plan."""

import math

import numpy as np
import pytest
import torch

from crossagent.train.grpo_loss import (clipped_policy_loss, clipped_share, entropy_from_logits, group_advantages,
                                        grpo_loss, kl_k3, masked_mean, optimizer_steps, sample_turns,
                                        turn_weights)


def test_advantages_are_normalised_within_each_group():
    returns = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 2.0, 0.0])
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    # group 0: mean 0.25, std (Bessel) sqrt(0.75 / 3) = 0.5; group 1: equal; group 2: mean 1, std sqrt(2)
    expected = torch.tensor([1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 1 / math.sqrt(2), -1 / math.sqrt(2)])
    assert torch.allclose(group_advantages(returns, groups, eps=1e-6), expected, atol=1e-5)


def test_equal_returns_give_exactly_zero_advantage_and_zero_policy_gradient():
    advantages = group_advantages(torch.tensor([0.9, 0.9, 0.9, -0.3]), torch.tensor([5, 5, 5, 6]))
    assert torch.equal(advantages, torch.zeros(4))  # a group of one carries no signal either
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -3.0], [-2.0, -1.0], [-0.1, -0.2]], requires_grad=True)
    old = logp.detach() + torch.tensor([[0.3, -0.2], [0.0, 0.1], [0.5, 0.5], [-0.4, 0.0]])
    clipped_policy_loss(logp, old, advantages, torch.ones(4, 2), 0.2).sum().backward()
    assert torch.equal(logp.grad, torch.zeros(4, 2))


def test_episode_weighting_makes_each_episode_count_once_whatever_its_length():
    weights = turn_weights([1, 3], "episode")  # mean 2 turns: the short episode's turn 2, the long one's 2/3 each
    assert weights.tolist() == pytest.approx([2.0, 2 / 3, 2 / 3, 2 / 3])
    # A group of one success (A=+1, 1 turn) and one failure (A=-1, 3 turns): per-turn weighting sums the
    # advantages to -2 (the failure dominates); per-episode weighting to 0, as in single-turn GRPO.
    advantages = torch.tensor([1.0, -1.0, -1.0, -1.0])
    assert float((advantages * turn_weights([1, 3], "turn")).sum()) == -2.0
    assert float((advantages * weights).sum()) == pytest.approx(0.0, abs=1e-6)
    assert turn_weights([0, 2], "episode").tolist() == [1.0, 1.0]  # an episode without turns has no share
    with pytest.raises(ValueError, match="turn_weighting 'reply'"):
        turn_weights([1], "reply")


def test_kept_turns_carry_their_episodes_whole_weight():
    # 1 and 4 turns, of which 1 and 2 kept; the weights still average 1 over the kept turns.
    assert turn_weights([1, 4], "episode", [1, 2]).tolist() == pytest.approx([1.5, 0.75, 0.75])  # 1.5 per episode
    assert turn_weights([1, 4], "turn", [1, 2]).tolist() == pytest.approx([0.6, 1.2, 1.2])  # 0.6 against 4 x 0.6
    assert turn_weights([3, 0], "turn", [3, 0]).tolist() == [1.0, 1.0, 1.0]


def test_sample_turns_keeps_at_most_the_limit_in_order():
    rng = np.random.default_rng(0)
    picked = sample_turns([6, 2, 0], 3, rng)
    assert len(picked[0]) == 3 and picked[0] == sorted(set(picked[0])) and set(picked[0]) <= set(range(6))
    assert picked[1:] == [[0, 1], []]
    assert sample_turns([6, 2], 0, rng) == [list(range(6)), [0, 1]]
    draws = {tuple(sample_turns([6], 1, rng)[0]) for _ in range(200)}
    assert draws == {(i,) for i in range(6)}  # every turn can be drawn


def test_kl_k3_against_hand_computed_values():
    logp = torch.log(torch.tensor([0.5, 0.25, 0.3]))
    ref = torch.log(torch.tensor([0.25, 0.5, 0.3]))
    # delta = ref - logp: ln 0.5 -> 0.5 + 0.693147 - 1; ln 2 -> 2 - 0.693147 - 1; 0 -> 0
    assert torch.allclose(kl_k3(logp, ref), torch.tensor([0.193147, 0.306853, 0.0]), atol=1e-6)
    assert (kl_k3(torch.randn(50), torch.randn(50)) >= 0).all()


def test_clipping_engages_beyond_one_plus_minus_epsilon():
    old = torch.zeros(2, 2)
    logp = torch.log(torch.tensor([[1.5, 0.5], [1.5, 0.5]])).requires_grad_(True)  # ratios 1.5 and 0.5
    advantages = torch.tensor([1.0, -1.0])
    loss = clipped_policy_loss(logp, old, advantages, torch.ones(2, 2), clip_epsilon=0.2)
    # A=+1: -min(1.5, 1.2) = -1.2 (clipped), -min(0.5, 0.8) = -0.5; A=-1: -min(-1.5, -1.2) = 1.5, -min(-0.5, -0.8) = 0.8
    assert torch.allclose(loss, torch.tensor([(-1.2 - 0.5) / 2, (1.5 + 0.8) / 2]))
    loss.sum().backward()
    # d/dlogp of -ratio * A is -ratio * A; a clipped token has no gradient; each row is a mean over 2 tokens.
    assert torch.allclose(logp.grad, torch.tensor([[0.0, -0.25], [0.75, 0.0]]))
    assert torch.allclose(clipped_share(logp, old, advantages, torch.ones(2, 2), 0.2), torch.tensor([0.5, 0.5]))
    inside = torch.log(torch.tensor([[1.1, 0.9]]))
    assert clipped_share(inside, torch.zeros(1, 2), torch.tensor([1.0]), torch.ones(1, 2), 0.2).item() == 0.0


def test_entropy_of_uniform_and_of_a_two_way_distribution():
    assert torch.allclose(entropy_from_logits(torch.zeros(2, 3, 10)), torch.full((2, 3), math.log(10)))
    two_way = torch.log(torch.tensor([0.25, 0.75]))
    assert entropy_from_logits(two_way).item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


def test_grpo_loss_combines_the_terms_with_token_masks():
    mask = torch.tensor([[1, 1], [1, 0]])
    old = torch.zeros(2, 2)
    logp = torch.log(torch.tensor([[1.0, 1.5], [0.5, 7.0]]))  # ratios; the 7.0 is padding
    ref = torch.stack([logp[0], torch.log(torch.tensor([0.25, 0.1]))])  # row 1 token 0: ref - logp = ln 0.5
    entropy = torch.tensor([[1.0, 1.0], [2.0, 9.0]])
    advantages = torch.tensor([1.0, -1.0])
    terms = grpo_loss(logp, old, ref, advantages, mask, entropy, clip_epsilon=0.2, kl_coef=0.01, entropy_coef=0.001)
    # policy: row 0 (-1 - 1.2) / 2 = -1.1; row 1: -min(-0.5, -0.8) = 0.8 (the padded token is ignored)
    assert torch.allclose(terms.policy, torch.tensor([-1.1, 0.8]))
    assert torch.allclose(terms.kl, torch.tensor([0.0, 0.193147]), atol=1e-6)
    assert torch.allclose(terms.entropy, torch.tensor([1.0, 2.0]))
    assert torch.allclose(terms.clip_fraction, torch.tensor([0.5, 1.0]))
    per_sample = torch.tensor([-1.1 - 0.001 * 1.0, 0.8 + 0.01 * 0.193147 - 0.001 * 2.0])
    assert torch.allclose(terms.per_sample, per_sample, atol=1e-6)
    assert terms.loss.item() == pytest.approx(per_sample.mean().item(), abs=1e-6)  # mean over tokens, then replies
    assert torch.equal(grpo_loss(logp, old, None, advantages, mask, entropy, 0.2, 0.01, 0.0).kl, torch.zeros(2))


def test_masked_mean_ignores_padding_and_empty_rows():
    values = torch.tensor([[1.0, 3.0, 100.0], [5.0, 5.0, 5.0]])
    assert torch.equal(masked_mean(values, torch.tensor([[1, 1, 0], [0, 0, 0]])), torch.tensor([2.0, 0.0]))


@pytest.mark.parametrize("turns, processes", [(7, 1), (7, 2), (1, 2), (16, 3)])
def test_every_turn_is_used_once_per_epoch_and_processes_run_equal_passes(turns, processes):
    plans = [optimizer_steps(turns, processes, rank, minibatch_size=2, accumulation=2,
                             rng=np.random.default_rng(rank)) for rank in range(processes)]
    used = [i for plan in plans for step in plan for batch, weights in zip(step.micro_batches, step.weights)
            for i, w in zip(batch, weights) if w == 1.0]
    assert sorted(used) == list(range(turns))
    shapes = {tuple(tuple(len(b) for b in step.micro_batches) for step in plan) for plan in plans}
    assert len(shapes) == 1  # the same passes on every process (DDP needs it)
    for number in range(len(plans[0])):  # a step's divisor is its real turns over all processes
        assert plans[0][number].turns == sum(sum(w) for plan in plans for w in plan[number].weights)
