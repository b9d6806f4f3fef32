"""Level `latent` (`Latent:`): a learned discrete code for a chunk of primitive actions (OpenHA's LA).

    Latent: <|latent_12|>

A code is one special token of the model's tokenizer (`<|latent_0|>` ... `<|latent_63|>`), as OpenHA
writes its latent actions as reserved tokens. Nothing here knows what a code means: a codebook learned
from expert chunks (executors.latent_model, `crossagent executors train-latent`) gives codes their
chunks, and its decoder executes them (executors.latent, reading the view only). There is no scripted
executor: the registry runs the decoder whatever the executors' kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crossagent.actions import lark
from crossagent.actions.parse_error import ParseError

NAME = "latent"
TAG = "Latent:"
CODES = 64  # tokens the tokenizer and the grammar know; a codebook has at most this many codes
_CODE = re.compile(r"^<\|latent_(?P<code>\d+)\|>$")


@dataclass(frozen=True)
class Latent:
    code: int


def token(code: int) -> str:
    return f"<|latent_{code}|>"


TOKENS: tuple[str, ...] = tuple(token(code) for code in range(CODES))


def parse(body: str) -> Latent | ParseError:
    """The text after `Latent:`."""
    match = _CODE.match(body.strip())
    if not match:
        return ParseError(f"not a latent code token <|latent_N|>: {body.strip()!r}", body)
    code = int(match["code"])
    if code >= CODES:
        return ParseError(f"latent code {code} is not in 0..{CODES - 1}", body)
    return Latent(code)


def to_text(action: Latent) -> str:
    return f"{TAG} {token(action.code)}"


def grammar() -> str:
    """The lines `to_text` writes, as a Lark expression (constrained decoding): each code one token."""
    return f"{lark.literal(TAG + ' ')} ({' | '.join(lark.special_token(t) for t in TOKENS)})"
