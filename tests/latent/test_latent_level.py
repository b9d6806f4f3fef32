"""The latent level's text: a code's line round trips, the chain puts it between motion and raw, and the
grammar (llguidance, on a tokenizer with the code tokens) accepts exactly the valid code lines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossagent.actions import latent, motion, raw
from crossagent.actions.chain import format_reply, parse_reply
from crossagent.actions.levels import LEVELS, UPPER_LEVELS
from crossagent.actions.parse_error import ParseError
from crossagent.models.constrained_decoding import grammar_compiler
from crossagent.models.output_grammar import follows_format, output_grammar
from crossagent.models.tokenizer import LATENT_TOKENS, TokenizerConfig, default_corpus, train_tokenizer

codes = st.integers(0, latent.CODES - 1).map(latent.Latent)


@given(codes)
def test_a_code_round_trips(action):
    assert latent.parse(latent.to_text(action).removeprefix(latent.TAG)) == action


@given(codes, st.sampled_from(["move_left", "do"]))
def test_a_chain_puts_latent_between_motion_and_raw(action, name):
    actions = {"latent": action, "raw": raw.RawAction(name), "motion": motion.Motion(name, 2)}
    text = format_reply(actions)
    assert text.splitlines() == [motion.to_text(actions["motion"]), latent.to_text(action), raw.to_text(actions["raw"])]
    assert parse_reply(text).actions == actions
    assert parse_reply(latent.to_text(action)).executed_level == "latent"
    assert LEVELS == ("skill", "grounding", "motion", "latent", "raw") and "latent" in UPPER_LEVELS


@pytest.mark.parametrize("body", ["", "12", "<|latent_64|>", "<|latent_-1|>", "<|latent_1|><|latent_2|>", "latent_3"])
def test_what_is_not_a_code_is_a_parse_error(body):
    assert isinstance(latent.parse(body), ParseError)


@pytest.fixture(scope="module")
def compiler():
    corpus = list(default_corpus(grounding_points=100))
    tokenizer = train_tokenizer(corpus, TokenizerConfig(vocab_size=400), latent_codes=True)
    return grammar_compiler(tokenizer, len(tokenizer))


@given(codes)
def test_the_grammar_accepts_every_code_line(compiler, action):
    reply = latent.to_text(action)
    assert compiler.accepts(output_grammar("latent"), reply)
    assert follows_format(parse_reply(reply), "latent")


@pytest.mark.parametrize("reply", ["", "Latent: <|latent_64|>", "Latent: 5", "Latent:<|latent_5|>",
                                   "Latent: <|latent_5|><|latent_6|>", "Latent: <|latent_5|>\n", "Action: noop",
                                   "Latent: <|latent_5|>\nAction: noop"])
def test_the_grammar_rejects_what_is_not_one_code_line(compiler, reply):
    assert not compiler.accepts(output_grammar("latent"), reply)


def test_code_tokens_are_whole_tokens_added_after_the_trained_vocabulary():
    corpus = list(default_corpus(grounding_points=100))
    plain = train_tokenizer(corpus, TokenizerConfig(vocab_size=400))
    with_codes = train_tokenizer(corpus, TokenizerConfig(vocab_size=400), latent_codes=True)
    assert len(with_codes) == len(plain) + len(LATENT_TOKENS)
    assert {token: i for token, i in with_codes.get_vocab().items() if token not in LATENT_TOKENS} == plain.get_vocab()
    assert not set(LATENT_TOKENS) & set(plain.get_vocab())
    ids = with_codes("Latent: <|latent_7|>", add_special_tokens=False)["input_ids"]
    assert with_codes.convert_tokens_to_ids("<|latent_7|>") == ids[-1]
    assert with_codes.decode(ids) == "Latent: <|latent_7|>"
