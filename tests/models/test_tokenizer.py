"""The locally trained tokenizer: special tokens whole, lossless text, Qwen2-VL's chat layout."""

import pytest

from crossagent.actions import grounding
from crossagent.models.tokenizer import (IM_END, REPLY_TOKENS, SPECIAL_TOKENS, TokenizerConfig, default_corpus,
                                         train_tokenizer)

GROUNDING_REPLY = grounding.to_text(grounding.Grounding("collect", (412, 530), "tree"))


@pytest.fixture(scope="module")
def tokenizer(tiny):
    return tiny[1].tokenizer


def test_special_tokens_are_single_distinct_ids(tokenizer):
    ids = [tokenizer.encode(token, add_special_tokens=False) for token in SPECIAL_TOKENS]
    assert all(len(i) == 1 for i in ids)
    assert len({i[0] for i in ids}) == len(SPECIAL_TOKENS)
    inside = tokenizer.encode(GROUNDING_REPLY, add_special_tokens=False)
    for token in REPLY_TOKENS:
        assert tokenizer.convert_tokens_to_ids(token) in inside


@pytest.mark.parametrize("text", [
    GROUNDING_REPLY,
    "Motion: move left 3\nAction: do",
    "Task: Make a stone pickaxe, then défeat the zombie — ünïcode 木 🌲 survives.",
    "view:\n.T#~~c\n  tabs\tand  spaces  ",
])
def test_text_round_trips(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_reply_tokens_survive_skipping_special_tokens(tokenizer):
    ids = tokenizer.encode(GROUNDING_REPLY + IM_END, add_special_tokens=False)
    assert tokenizer.decode(ids, skip_special_tokens=True) == GROUNDING_REPLY


def test_chat_template_is_qwen2_vl_layout_with_assistant_mask(tokenizer):
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "S"}]},
        {"role": "user", "content": [{"type": "text", "text": "Task: T"}, {"type": "image"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Action: noop"}]},
        {"role": "user", "content": "plain string"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nS<|im_end|>\n"
                    "<|im_start|>user\nTask: T<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n"
                    "<|im_start|>assistant\nAction: noop<|im_end|>\n"
                    "<|im_start|>user\nplain string<|im_end|>\n"
                    "<|im_start|>assistant\n")
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
    masked = [i for i, keep in zip(encoded["input_ids"], encoded["assistant_masks"]) if keep]
    assert tokenizer.decode(masked) == "Action: noop<|im_end|>"


def test_vocabulary_size_is_an_upper_bound():
    corpus = list(default_corpus(grounding_points=200))
    small = train_tokenizer(corpus, TokenizerConfig(vocab_size=400))
    assert len(small) <= 400
    assert small.decode(small.encode(GROUNDING_REPLY, add_special_tokens=False)) == GROUNDING_REPLY
