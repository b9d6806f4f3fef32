"""Encoded turns and prefix-shared micro-batches give the log-probs (and gradients) of a plain forward pass
over each turn alone, as GRPO computed them before turns were encoded once and prefixes shared."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossagent.agents.model_policy import SampledTurn
from crossagent.models.generation import GenerationSettings
from crossagent.models.loading import load_model
from crossagent.models.prompts import Turn, build_messages
from crossagent.models.reply_request import ReplyRequest
from crossagent.models.samplers import LocalSampler
from crossagent.train.grpo_loss import reply_logprobs, score_turns
from crossagent.train.turn_batches import encode_turns, shared_prefix
from .conftest import plain_logprobs


@pytest.fixture(scope="module")
def sampled(tiny_path):
    """Constrained replies to prompts of two formats, with 0-2 frames of history (1-3 images)."""
    model, processor = load_model(tiny_path)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    chats = [build_messages("mixed", "Collect wood.", [], frames[0]),
             build_messages("mixed", "Collect wood.", [Turn(frames[0], None, "Action: noop")], frames[1]),
             build_messages("mixed", "Place a table.", [Turn(frames[0], None, "Skill: collect wood"),
                                                        Turn(frames[1], None, "Motion: move left 2")], frames[2]),
             build_messages("raw", "Collect wood.", [], frames[2])]
    requests = [ReplyRequest(*chat, seed, "raw" if seed == 3 else "mixed") for seed, chat in enumerate(chats)]
    sampler = LocalSampler(model, processor, GenerationSettings(max_new_tokens=16, do_sample=True), constrained=True)
    turns = [SampledTurn(request.messages, request.images, sample.text, sample.token_ids, False,
                         request.output_format, request.final_level)
             for request, sample in zip(requests, sampler.sample(requests))]
    return model, processor, turns


def test_the_micro_batch_shares_the_system_prompt(sampled):
    model, processor, turns = sampled
    encoded = encode_turns(turns, range(len(turns)), model, processor, constrained=True)
    same_format = [encoded[i] for i in range(3)]
    prefix = shared_prefix(same_format)
    assert prefix <= min(turn.text_head for turn in same_format)  # never an image placeholder
    assert prefix > 0.6 * min(len(turn.prompt_ids) for turn in same_format)  # the system prompt at least
    assert shared_prefix(same_format[:2]) == encoded[0].text_head  # the same task: everything before the image
    assert 0 < shared_prefix(list(encoded.values())) < prefix  # another format's system prompt differs sooner
    assert shared_prefix([encoded[0]]) == encoded[0].text_head


def test_encoded_positions_are_the_models_own(sampled):
    model, processor, turns = sampled
    encoded = encode_turns(turns, [2], model, processor, constrained=False)[2]
    ids = torch.cat([encoded.prompt_ids, encoded.reply_ids])[None]
    types = (ids == model.config.image_token_id).long()  # image placeholders are type 1, text 0
    expected, _ = model.model.get_rope_index(ids, types, encoded.image_grid_thw)
    assert torch.equal(encoded.positions, expected[:, 0])


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_log_probs_and_gradients_equal_a_plain_pass_over_each_turn(sampled, temperature):
    model, processor, turns = sampled
    encoded = encode_turns(turns, range(len(turns)), model, processor, constrained=True)
    logp, mask, _ = reply_logprobs(model, [encoded[i] for i in range(len(turns))], temperature)
    (logp * mask).sum().backward()
    shared_grads = [parameter.grad.clone() for parameter in model.parameters()]
    model.zero_grad()
    expected = [plain_logprobs(model, processor, turn, encoded[i].allowed, temperature)
                for i, turn in enumerate(turns)]
    sum(values.sum() for values in expected).backward()
    for row, values in enumerate(expected):
        assert mask[row].sum() == len(values)
        assert torch.allclose(logp[row, :len(values)], values, atol=1e-5)
    for shared, parameter in zip(shared_grads, model.parameters()):
        assert torch.allclose(shared, parameter.grad, rtol=1e-4, atol=1e-6)
    model.zero_grad()
    # The no-grad scoring pass (old and reference log-probs) batches by length: the same numbers.
    scores = score_turns(model, encoded, temperature, batch_size=2)
    for index, values in enumerate(expected):
        assert torch.allclose(scores[index], values.detach(), atol=1e-5)
