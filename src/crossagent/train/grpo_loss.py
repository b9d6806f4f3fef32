"""GRPO's pieces as functions of tensors, checked against hand-computed numbers in tests/train/test_grpo_loss.py.

The advantages, the clipped loss with its KL and entropy terms, the log-probabilities of reply
tokens (one forward pass over encoded turns, train/turn_batches.py, used for the old, reference and
current policy alike), and the plan of which turns go into which optimizer step on which process.
train/grpo.py puts them together.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from trl.trainer.utils import selective_log_softmax

from crossagent.models.constrained_decoding import unpack_allowed
from crossagent.train.turn_batches import EncodedTurn, reply_logits


# --- the loss, as pure functions of tensors ----------------------------------------------------
def group_advantages(returns: torch.Tensor, group_ids: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(R - group mean) / (group std + eps), std with Bessel's correction as in TRL and verl.

    A group whose returns are all equal (or a group of one) gets exactly 0: it carries no signal.
    """
    returns = returns.to(torch.float32)
    advantages = torch.zeros_like(returns)
    for group in group_ids.unique():
        members = group_ids == group
        values = returns[members]
        if values.numel() < 2 or bool((values == values[0]).all()):
            continue
        advantages[members] = (values - values.mean()) / (values.std() + eps)
    return advantages


def returns_to_go(rewards: Sequence[float], discount: float) -> list[float]:
    """Per turn t, sum over k >= t of discount^(k - t) x rewards[k]: what the episode earned from that turn on."""
    out, running = [0.0] * len(rewards), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + discount * running
        out[t] = running
    return out


def step_advantages(groups: Sequence[int], turn_states: Sequence[Sequence[Hashable]],
                    turn_rewards: Sequence[Sequence[float]], discount: float, eps: float = 1e-6) -> list[list[float]]:
    """GiGPO's step-level advantages (Feng et al. 2025, "Group-in-Group Policy Optimization for LLM Agent
    Training"), one list per episode, one value per turn.

    The turns of one group (episodes `groups[e]`) that saw the same state (`turn_states[e][t]`: anything hashable
    that tells prompts apart) form an anchor group, within one episode or across them; each turn's discounted
    return from that turn on is normalised within its anchor group as group_advantages normalises episode returns.
    A memoryless policy that loops revisits a state, and the visit that broke the loop (nearer the success) scores
    above the visits that looped, so the looping reply is pushed down even inside a successful episode.
    A state seen once, or with equal returns-to-go, gets 0.
    """
    if not len(groups) == len(turn_states) == len(turn_rewards):
        raise ValueError(f"{len(groups)} groups, {len(turn_states)} state lists and {len(turn_rewards)} reward lists")
    if not 0 < discount <= 1:
        raise ValueError(f"the step discount must be within (0, 1], got {discount}")
    anchors: dict[tuple[int, Hashable], int] = {}
    ids, values = [], []
    for group, states, rewards in zip(groups, turn_states, turn_rewards, strict=True):
        if len(states) != len(rewards):
            raise ValueError(f"{len(states)} states for {len(rewards)} rewards in one episode")
        values += returns_to_go(rewards, discount)
        ids += [anchors.setdefault((group, state), len(anchors)) for state in states]
    flat = group_advantages(torch.tensor(values), torch.tensor(ids, dtype=torch.long), eps)
    out, start = [], 0
    for rewards in turn_rewards:
        out.append(flat[start:start + len(rewards)].tolist())
        start += len(rewards)
    return out


TURN_WEIGHTINGS = ("episode", "turn")


def check_turn_weighting(weighting: str) -> None:
    if weighting not in TURN_WEIGHTINGS:
        raise ValueError(f"turn_weighting {weighting!r} is not one of {', '.join(TURN_WEIGHTINGS)}")


def turn_weights(turns_per_episode: list[int], weighting: str, kept_per_episode: list[int] | None = None
                 ) -> torch.Tensor:
    """One weight per kept turn, episodes in order, averaging 1 over the kept turns.

    "turn": every turn weighs 1, so a long episode counts in proportion to its length. In multi-turn GRPO
    the failed episodes run longest (to the step cap), so their negative advantage outweighs the group's
    positive one and the update mostly pushes probability away from whatever the policy did.
    "episode": each episode weighs the same (its turns share the weight), so a group's advantages sum to
    zero in the loss as they do in single-turn GRPO, where one completion is one sample.
    `kept_per_episode`: how many of each episode's turns enter the update (sample_turns; None: all). The kept
    turns carry their episode's whole weight, so the loss stays an unbiased estimate of the full one.
    """
    check_turn_weighting(weighting)
    kept_per_episode = turns_per_episode if kept_per_episode is None else kept_per_episode
    pairs = [(count, kept) for count, kept in zip(turns_per_episode, kept_per_episode, strict=True) if kept > 0]
    if not pairs:
        return torch.ones(0)
    shares = [count if weighting == "turn" else 1.0 for count, _ in pairs]  # each episode's share of the loss
    scale = sum(kept for _, kept in pairs) / sum(shares)
    return torch.cat([torch.full((kept,), scale * share / kept) for share, (_, kept) in zip(shares, pairs)])


def sample_turns(turns_per_episode: list[int], limit: int, rng: np.random.Generator) -> list[list[int]]:
    """Per episode, the indices (in order) of the turns the update trains on: at most `limit`, drawn without
    replacement (0: every turn). Long failed episodes then cost the update no more than short ones."""
    return [list(range(count)) if not limit or count <= limit
            else sorted(rng.choice(count, size=limit, replace=False).tolist()) for count in turns_per_episode]


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(policy || reference) estimate exp(ref - logp) - (ref - logp) - 1 (Schulman's k3)."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the last dimension's unmasked entries: one value per row."""
    mask = mask.to(values.dtype)
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def clipped_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                        mask: torch.Tensor, clip_epsilon: float) -> torch.Tensor:
    """PPO's clipped surrogate, negated, averaged over each reply's tokens: one value per reply."""
    ratio = torch.exp(logp - old_logp)
    advantage = advantages.unsqueeze(-1)
    surrogate = torch.min(ratio * advantage, torch.clamp(ratio, 1 - clip_epsilon, 1 + clip_epsilon) * advantage)
    return masked_mean(-surrogate, mask)


def clipped_share(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                  clip_epsilon: float) -> torch.Tensor:
    """Per reply, the share of tokens where the clip is active (ratio beyond 1 ± eps in the advantage's direction)."""
    ratio = torch.exp(logp - old_logp)
    advantage = advantages.unsqueeze(-1)
    clipped = ((ratio > 1 + clip_epsilon) & (advantage > 0)) | ((ratio < 1 - clip_epsilon) & (advantage < 0))
    return masked_mean(clipped.to(logp.dtype), mask)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) over the last dimension, in nats."""
    log_probs = torch.log_softmax(logits, dim=-1)
    return -(log_probs.exp() * log_probs).sum(-1)


@dataclass
class LossTerms:
    per_sample: torch.Tensor  # [replies] policy + kl_coef * kl - entropy_coef * entropy
    policy: torch.Tensor  # [replies]
    kl: torch.Tensor  # [replies]
    entropy: torch.Tensor  # [replies]
    clip_fraction: torch.Tensor  # [replies]

    @property
    def loss(self) -> torch.Tensor:
        """Mean over replies of each reply's mean over its tokens."""
        return self.per_sample.mean()


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, entropy: torch.Tensor, clip_epsilon: float,
              kl_coef: float, entropy_coef: float) -> LossTerms:
    """All tensors [replies, tokens] except advantages [replies]; mask 1 on reply tokens, 0 on padding."""
    policy = clipped_policy_loss(logp, old_logp, advantages, mask, clip_epsilon)
    kl = masked_mean(kl_k3(logp, ref_logp), mask) if ref_logp is not None else torch.zeros_like(policy)
    mean_entropy = masked_mean(entropy, mask)
    with torch.no_grad():
        clip_fraction = clipped_share(logp, old_logp, advantages, mask, clip_epsilon)
    return LossTerms(policy + kl_coef * kl - entropy_coef * mean_entropy, policy, kl, mean_entropy, clip_fraction)


# --- log-probabilities of the reply tokens ------------------------------------------------------
def reply_logprobs(model, batch: list[EncodedTurn], temperature: float, with_entropy: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(log-probs [turns, tokens], mask, entropies or None) of each turn's reply tokens after its prompt,
    over the tokens its grammar allowed at each position where the turn has masks (train.turn_batches)."""
    logits, reply_ids, mask = reply_logits(model, batch)
    logits = logits.float() / temperature
    allowed = [turn.allowed for turn in batch]
    if any(masks is not None for masks in allowed):
        logits = _held_to_grammar(logits, allowed)
    logp = selective_log_softmax(logits, reply_ids)
    return logp, mask, entropy_from_logits(logits) if with_entropy else None


def _held_to_grammar(logits: torch.Tensor, allowed: list[np.ndarray | None]) -> torch.Tensor:
    """The logits with every token outside a row's grammar at the lowest finite value: its probability is
    exactly 0, and unlike -inf it keeps the entropy (0 * log 0) finite."""
    keep = torch.ones(logits.shape, dtype=torch.bool)
    for row, masks in enumerate(allowed):
        if masks is not None:
            keep[row, :len(masks)] = torch.from_numpy(unpack_allowed(masks, logits.shape[-1]))
    return logits.masked_fill(~keep.to(logits.device), torch.finfo(logits.dtype).min)


@torch.no_grad()
def score_turns(model, turns: dict[int, EncodedTurn], temperature: float, batch_size: int) -> dict[int, torch.Tensor]:
    """Log-probs of every encoded turn's reply, one 1-D tensor per turn index. Batches of similar length
    (the order of a no-grad pass is free): less padding."""
    order = sorted(turns, key=lambda index: len(turns[index].prompt_ids) + len(turns[index].reply_ids))
    scores = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        logp, _, _ = reply_logprobs(model, [turns[i] for i in chunk], temperature)
        for row, index in enumerate(chunk):
            scores[index] = logp[row, :len(turns[index].reply_ids)]
    return scores


def padded(rows: list[torch.Tensor], width: int) -> torch.Tensor:
    out = rows[0].new_zeros((len(rows), width))
    for row, values in enumerate(rows):
        out[row, :len(values)] = values
    return out


# --- which turns go into which optimizer step, on which process ---------------------------------
@dataclass(frozen=True)
class OptimizerStep:
    micro_batches: list[list[int]]  # this process's turn indices, at most minibatch_size per micro-batch
    weights: list[list[float]]  # 1.0, or 0.0 for a filler row (keeps every process's pass count equal)
    turns: int  # real turns in this step over all processes: the step's loss is their mean


def optimizer_steps(num_turns: int, num_processes: int, process_index: int, minibatch_size: int,
                    accumulation: int, rng: np.random.Generator,
                    lengths: Mapping[int, int] | None = None) -> list[OptimizerStep]:
    """One epoch. Process p owns turns p, p + P, p + 2P, ... (shuffled); under DDP every process must run
    the same number of forward/backward passes, so shorter shards end with zero-weight filler rows.
    With `lengths` (turn index -> tokens), a step's turns are cut into micro-batches in order of length: less padding,
    and the same step (its gradient is the sum over its turns, however they are grouped)."""
    shard = rng.permutation(np.arange(process_index, num_turns, num_processes)).tolist()
    shard_sizes = [len(range(p, num_turns, num_processes)) for p in range(num_processes)]
    width = max(shard_sizes)
    filler = shard[0] if shard else 0
    per_step = minibatch_size * accumulation
    steps = []
    for start in range(0, width, per_step):
        rows = [(shard[r], 1.0) if r < len(shard) else (filler, 0.0)
                for r in range(start, min(start + per_step, width))]
        if lengths is not None:
            rows.sort(key=lambda row: lengths[row[0]])
        micro = [rows[i:i + minibatch_size] for i in range(0, len(rows), minibatch_size)]
        steps.append(OptimizerStep(
            micro_batches=[[index for index, _ in batch] for batch in micro],
            weights=[[weight for _, weight in batch] for batch in micro],
            turns=sum(min(max(size - start, 0), per_step) for size in shard_sizes)))
    return steps
