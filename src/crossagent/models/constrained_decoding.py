"""Constrained decoding: every row of a batch may only write what its grammar allows next.

llguidance (the library vLLM's `guidance` structured-output backend runs) keeps one matcher per
row: it reads the row's newest token, then gives the tokens its grammar allows next as a bitmask,
and the logits of all others become -inf. `GrammarConstraint` runs before `RowSampling`, so a row
samples (or argmaxes) over allowed tokens only, and its draw still depends on its own seed alone.
The end of the grammar allows just the tokenizer's end-of-reply token, so a constrained reply ends
by itself; only a reply cut at `max_new_tokens` can be incomplete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import llguidance
import llguidance.hf
import numpy as np
import torch
from transformers import LogitsProcessor, PreTrainedTokenizerFast

GrammarSyntax = Literal["grammar", "regex"]


@dataclass(frozen=True)
class Grammar:
    """What one row must write: `grammar` is Lark (llguidance's dialect: `<|name|>` is a special token)
    or GBNF, as vLLM's `structured_outputs.grammar`; `regex` a regular expression over the text."""

    text: str
    syntax: GrammarSyntax = "grammar"


class GrammarCompiler:
    """Grammars compiled for one tokenizer, each once: rows get copies of the compiled matcher."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, vocab_size: int):
        self.hf_tokenizer = tokenizer
        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)
        self.vocab_size = vocab_size

    def matcher(self, grammar: Grammar) -> llguidance.LLMatcher:
        """A fresh matcher at the grammar's start; ValueError says why a grammar does not compile."""
        return self._compiled(grammar).deep_copy()

    def accepts(self, grammar: Grammar, reply: str) -> bool:
        """Whether the grammar accepts `reply` whole, as the tokenizer writes it, then the end token."""
        tokens = [*self.hf_tokenizer.encode(reply, add_special_tokens=False), self.tokenizer.eos_token]
        return self.matcher(grammar).validate_tokens(tokens) == len(tokens)

    def allowed_tokens(self, grammar: Grammar, token_ids: Sequence[int]) -> np.ndarray:
        """Per token of a reply written under `grammar`, the packed bitmask (little bit order, as llguidance
        writes it) of the tokens the grammar allowed at that position: the support of the distribution the
        token was sampled from. A token past the grammar's end allows everything (the reply is not held)."""
        matcher = self.matcher(grammar)
        width = (self.vocab_size + 7) // 8
        masks = np.full((len(token_ids), width), 0xFF, dtype=np.uint8)
        for position, token in enumerate(token_ids):
            if matcher.is_stopped():
                break
            masks[position] = np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8)[:width]
            if not matcher.consume_token(token):
                raise ValueError(f"token {token} at position {position} is outside the grammar "
                                 f"({matcher.get_error()}): was this reply sampled under it?")
        return masks

    @lru_cache(maxsize=64)
    def _compiled(self, grammar: Grammar) -> llguidance.LLMatcher:
        try:
            definition = llguidance.grammar_from(grammar.syntax, grammar.text)
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"the {grammar.syntax} does not compile: {error}") from error
        matcher = llguidance.LLMatcher(self.tokenizer, definition)
        if matcher.is_error():
            raise ValueError(f"the {grammar.syntax} does not compile: {matcher.get_error()}")
        return matcher


@lru_cache(maxsize=4)
def grammar_compiler(tokenizer: PreTrainedTokenizerFast, vocab_size: int) -> GrammarCompiler:
    """One compiler per tokenizer (wrapping a tokenizer for llguidance reads its whole vocabulary)."""
    return GrammarCompiler(tokenizer, vocab_size)


def unpack_allowed(packed: np.ndarray, vocab_size: int) -> np.ndarray:
    """llguidance's packed bitmask(s) (little bit order, along the last axis) as booleans per token id."""
    return np.unpackbits(packed, axis=-1, bitorder="little")[..., :vocab_size].astype(bool)


class GrammarConstraint(LogitsProcessor):
    """Masks each row's logits to what its matcher allows next, until the row writes `end_token`; rows
    without a matcher are left as they are. `generate` calls it once per new token of every row."""

    def __init__(self, matchers: Sequence[llguidance.LLMatcher | None], end_token: int):
        self.matchers = list(matchers)
        self.end_token = end_token
        self.ended = [matcher is None for matcher in self.matchers]
        self.started = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.started:  # the first call sees the prompt only
            self._read_newest_tokens(input_ids[:, -1].tolist())
        self.started = True
        live = [row for row, ended in enumerate(self.ended) if not ended]
        if not live:
            return scores
        blocked = torch.zeros(scores.shape, dtype=torch.bool)
        for row in live:
            allowed = unpack_allowed(np.frombuffer(self.matchers[row].compute_bitmask(), dtype=np.uint8),
                                     scores.shape[-1])
            blocked[row] = True
            blocked[row, :len(allowed)] = torch.from_numpy(~allowed)
        return scores.masked_fill(blocked.to(scores.device), float("-inf"))

    def _read_newest_tokens(self, tokens: list[int]) -> None:
        for row, token in enumerate(tokens):
            if self.ended[row]:
                continue
            matcher = self.matchers[row]
            if not matcher.consume_token(token):
                raise RuntimeError(f"row {row}: token {token} is outside its grammar ({matcher.get_error()}); "
                                   f"a logits processor after the constraint changed the choice")
            self.ended[row] = token == self.end_token


def grammar_constraint(tokenizer: PreTrainedTokenizerFast, vocab_size: int,
                       grammars: Sequence[Grammar | None]) -> GrammarConstraint:
    compiler = grammar_compiler(tokenizer, vocab_size)
    return GrammarConstraint([None if grammar is None else compiler.matcher(grammar) for grammar in grammars],
                             compiler.tokenizer.eos_token)
