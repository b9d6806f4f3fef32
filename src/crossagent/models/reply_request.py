"""What an agent asks a model and what comes back: kept free of torch and transformers, so scripted
agents and the episode loop import them without loading a model library."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

# (messages, images): the chat in Hugging Face format and its images in order (models.prompts.build_messages).
Chat = tuple[list[dict], list[np.ndarray]]


@dataclass(frozen=True)
class ReplyRequest:
    """A chat awaiting one reply, the seed its sample is drawn from, and the output format (models.prompts)
    its system prompt asks for: a constraining sampler holds the reply to that format's grammar."""

    messages: list[dict]
    images: list[np.ndarray]
    seed: int
    output_format: str | None = None  # None: free text, never constrained
    final_level: str | None = None  # the level a picked chain must end at (slow mode: "raw"); None: any

    @property
    def chat(self) -> Chat:
        return self.messages, self.images


@dataclass(frozen=True)
class Sample:
    text: str
    token_ids: tuple[int, ...]  # as generated, the stop token included when one was generated; () if unknown


class ReplySampler(Protocol):
    """Answers a list of requests with one call (models.samplers: LocalSampler, ServerSampler)."""

    def sample(self, requests: list[ReplyRequest]) -> list[Sample]: ...
