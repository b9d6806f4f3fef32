"""GRPO's log-probs of a constrained reply are taken on the policy that sampled it: the model's distribution
renormalised over the tokens the grammar allowed at each position."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossagent.agents.model_policy import SampledTurn
from crossagent.models.generation import GenerationSettings
from crossagent.models.loading import load_model
from crossagent.models.prompts import build_messages
from crossagent.models.reply_request import ReplyRequest
from crossagent.models.samplers import LocalSampler
from crossagent.train.grpo_loss import reply_logprobs
from crossagent.train.turn_batches import allowed_tokens, encode_turns


@pytest.fixture(scope="module")
def constrained_turns(tiny_path):
    model, processor = load_model(tiny_path)
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    requests = [ReplyRequest(*build_messages("mixed", "Collect wood.", [], image), seed, "mixed", final_level)
                for seed, final_level in ((1, None), (2, "raw"), (3, None))]
    sampler = LocalSampler(model, processor, GenerationSettings(max_new_tokens=48, do_sample=True, temperature=1.0),
                           constrained=True)
    turns = [SampledTurn(request.messages, request.images, sample.text, sample.token_ids, False, "mixed",
                         request.final_level)
             for request, sample in zip(requests, sampler.sample(requests))]
    return model, processor, turns


def test_each_sampled_token_is_allowed_where_it_was_sampled(constrained_turns):
    model, processor, turns = constrained_turns
    vocab = model.config.get_text_config().vocab_size
    for turn, masks in zip(turns, allowed_tokens(turns, processor, vocab, constrained=True)):
        bits = np.unpackbits(masks, axis=1, bitorder="little")[:, :vocab]
        assert bits.shape == (len(turn.token_ids), vocab)
        assert all(bits[position, token] for position, token in enumerate(turn.token_ids))
        assert bits.sum(axis=1).min() < vocab  # the grammar did hold the reply somewhere
    assert allowed_tokens(turns, processor, vocab, constrained=False) == [None] * len(turns)


def test_held_log_probs_are_the_renormalised_ones(constrained_turns):
    model, processor, turns = constrained_turns
    indices = list(range(len(turns)))
    free_turns = encode_turns(turns, indices, model, processor, constrained=False)
    held_turns = encode_turns(turns, indices, model, processor, constrained=True)
    allowed = [held_turns[i].allowed for i in indices]
    with torch.no_grad():
        free, mask, _ = reply_logprobs(model, [free_turns[i] for i in indices], temperature=1.0)
        held, _, entropy = reply_logprobs(model, [held_turns[i] for i in indices], temperature=1.0, with_entropy=True)
    reply = mask.bool()
    assert torch.all(held[reply] >= free[reply] - 1e-5)  # renormalising over a subset never lowers a log-prob
    assert torch.any(held[reply] > free[reply] + 1e-3)
    assert torch.isfinite(entropy[reply]).all() and torch.all(entropy[reply] >= 0)
    # Where the grammar allowed one token only (the end of the reply, a fixed tag), it is certain.
    for row, masks in enumerate(allowed):
        forced = np.unpackbits(masks, axis=1, bitorder="little").sum(axis=1) == 1
        assert forced.any()
        assert torch.allclose(held[row, :len(masks)][torch.from_numpy(forced)], torch.tensor(0.0), atol=1e-5)


def test_a_reply_outside_its_grammar_is_refused(constrained_turns):
    model, processor, turns = constrained_turns
    tokenizer = processor.tokenizer
    wrong = SampledTurn(turns[0].messages, turns[0].images, "Skill: dance",
                        tuple(tokenizer.encode("Skill: dance", add_special_tokens=False)), False, "mixed")
    with pytest.raises(ValueError, match="outside the grammar"):
        allowed_tokens([wrong], processor, model.config.get_text_config().vocab_size, constrained=True)
