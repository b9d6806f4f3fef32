"""Batched generation: one reply per request, the same replies as one request at a time (greedy)."""

import torch

from crossagent.actions import grounding
from crossagent.models.generation import GenerationSettings, generate_batch
from crossagent.models.prompts import Turn, build_messages

from .conftest import observation

SETTINGS = GenerationSettings(max_new_tokens=8)


def requests(count: int):
    """Different formats and history lengths, so the prompts differ in length and left padding matters."""
    formats = ("raw", "mixed", "skill", "grounding_coa")
    built = []
    for i in range(count):
        history = [Turn(observation(100 + i + j).image, None, "Action: noop") for j in range(i % 3)]
        built.append(build_messages(formats[i % len(formats)], "Collect wood.", history, observation(i).image))
    return built


def test_one_reply_per_request_equal_to_one_at_a_time(tiny):
    model, processor = tiny
    batch = generate_batch(model, processor, requests(4), SETTINGS)
    alone = [generate_batch(model, processor, [request], SETTINGS)[0] for request in requests(4)]
    assert [c.reply for c in batch] == [c.reply for c in alone]
    assert [c.prompt_tokens for c in batch] == [c.prompt_tokens for c in alone]
    assert [c.completion_tokens for c in batch] == [c.completion_tokens for c in alone]
    assert len({c.reply for c in batch}) > 1  # the untrained model still reads its input
    for completion in batch:
        assert 1 <= completion.completion_tokens <= SETTINGS.max_new_tokens
        assert completion.stopped or completion.completion_tokens == SETTINGS.max_new_tokens


def test_greedy_is_deterministic_and_sampling_follows_the_seed(tiny):
    model, processor = tiny
    batch = requests(2)
    assert generate_batch(model, processor, batch, SETTINGS) == generate_batch(model, processor, batch, SETTINGS)
    sampled = GenerationSettings(max_new_tokens=8, do_sample=True, temperature=1.0, top_k=50, seed=7)
    assert generate_batch(model, processor, batch, sampled) == generate_batch(model, processor, batch, sampled)


def test_empty_batch(tiny):
    assert generate_batch(*tiny, [], SETTINGS) == []


def test_reply_is_cut_at_the_stop_token_and_keeps_reply_tokens(tiny, monkeypatch):
    """A trained model writes a grounding line then <|im_end|>; decoding keeps <|point_start|> and friends."""
    model, processor = tiny
    tokenizer = processor.tokenizer
    text = grounding.to_text(grounding.Grounding("collect", (412, 530), "tree"))
    written = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    pad = tokenizer.pad_token_id

    def scripted_generate(input_ids, **kwargs):
        # Row 0 stops, then pads as generate does; row 1 runs out of tokens without stopping.
        width = len(written) + 3
        unfinished = (tokenizer.encode("Action: noop " * width, add_special_tokens=False))[:width]
        new = torch.tensor([written + [pad] * 3, unfinished])
        return torch.cat([input_ids, new], dim=1)

    monkeypatch.setattr(model, "generate", scripted_generate)
    stopped, cut = generate_batch(model, processor, requests(2), SETTINGS)
    assert stopped.reply == text and stopped.stopped and stopped.completion_tokens == len(written)
    assert not cut.stopped and cut.completion_tokens == len(written) + 3
    assert cut.reply.startswith("Action: noop")
