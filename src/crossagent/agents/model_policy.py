"""A reply policy over a vision-language model: prompts from models.prompts, replies from a sampler.

The prompt is a system prompt for the output format, the task, the last H turns (observation
and reply) and the current observation. Replies come from a models.samplers sampler: a model
in this process (LocalSampler) or an OpenAI-compatible server (ServerSampler, see
`server_policy`). `reply()` answers one observation; a runner stepping many episodes
(bench.lockstep) instead gathers each policy's `request()`, answers them all with one sampler
call, and hands each policy its sample with `answer()`, which the next `reply()` returns.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from crossagent.actions.chain import parse_reply
from crossagent.envs.crafter_env import Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.models import prompts
from crossagent.models.generation import Request
from crossagent.models.prompts import DEFAULT_HISTORY, OUTPUT_FORMATS, build_messages
from crossagent.models.samplers import ReplySampler, Sample, SamplerMeter, ServerSampler
from crossagent.tasks.task import Task

SEED_STRIDE = 100_003  # seeds of successive calls in one episode never meet another episode's
STREAMS = 1_000  # policies sharing an episode seed (GRPO group members) draw from distinct streams


@dataclass(frozen=True)
class SampledTurn:
    """One reply as GRPO trains on it: the request, the reply with its sampled token ids, and
    whether it was unparseable (`parse_reply(reply).error is not None`)."""

    messages: list[dict]
    images: list[np.ndarray]
    reply: str
    token_ids: tuple[int, ...]
    unparseable: bool


class ChatEpisode:
    """The prompt side of a chat policy: the task, the last H turns, and the observation awaiting a reply."""

    def __init__(self, output_format: str, history_length: int = DEFAULT_HISTORY, use_image: bool = True,
                 use_text: bool = False):
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"unknown output format {output_format!r} (known: {', '.join(OUTPUT_FORMATS)})")
        if not (use_image or use_text):
            raise ValueError("a chat policy needs the image, the text, or both")
        if history_length < 0:
            raise ValueError(f"history length {history_length} is negative")
        self.output_format = output_format
        self.history_length = history_length
        self.use_image = use_image
        self.use_text = use_text
        self.instruction: str | None = None
        self.history: deque[prompts.Turn] = deque(maxlen=history_length)
        self._pending: prompts.Turn | None = None

    def reset(self, instruction: str) -> None:
        self.instruction = instruction
        self.history.clear()
        self._pending = None

    def request(self, observation: Observation) -> Request:
        """The messages and images for this observation; `accept(reply)` must follow."""
        if self.instruction is None:
            raise RuntimeError("request() before reset(): the policy has no task")
        image = observation.image if self.use_image else None
        text = observation.text if self.use_text else None
        if (self.use_image and image is None) or (self.use_text and text is None):
            raise ValueError(f"the observation lacks the {'image' if self.use_image and image is None else 'text'} "
                             f"this policy reads")
        self._pending = prompts.Turn(image, text, "")
        return build_messages(self.output_format, self.instruction, list(self.history), image, text,
                              self.history_length)

    def accept(self, reply: str) -> None:
        if self._pending is None:
            raise RuntimeError("accept() without a pending request()")
        self.history.append(replace(self._pending, reply=reply))
        self._pending = None


class ModelPolicy:
    """The ReplyPolicy of a model agent. Counts its unparseable replies and, with `keep_turns`,
    records every reply as a SampledTurn (GRPO's training data).

    A reply asked alone is seeded from the episode seed, the call index and the policy's stream, so
    an episode's replies are reproducible and group members sharing an episode seed still differ.
    """

    uses_privileged_state = False

    def __init__(self, sampler: ReplySampler, output_format: str = "mixed", history_length: int = DEFAULT_HISTORY,
                 use_image: bool = True, use_text: bool = False, name: str | None = None, keep_turns: bool = False,
                 stream: int = 0):
        self.sampler = sampler
        self.chat = ChatEpisode(output_format, history_length, use_image, use_text)
        self.needs_image = use_image
        self.needs_text = use_text
        self.name = name or f"model:{output_format}"
        self.keep_turns = keep_turns
        if not 0 <= stream < STREAMS:
            raise ValueError(f"stream {stream} is not in [0, {STREAMS})")
        self.stream = stream
        self._reset_episode(seed=0)

    def _reset_episode(self, seed: int) -> None:
        self.turns: list[SampledTurn] = []
        self.unparseable_replies = 0
        self.own_sampling = SamplerMeter()  # the sampler calls this policy made alone (not a runner's batches)
        self._seed = seed
        self._calls = 0
        self._request: Request | None = None
        self._prepared: Sample | None = None

    def reset(self, task: Task, seed: int) -> None:
        self.chat.reset(task.instruction)
        self._reset_episode(seed)

    def request(self, observation: Observation) -> Request:
        """The prompt for this observation; `answer()` hands in its sample, or `reply()` asks for one."""
        self._request = self.chat.request(observation)
        self._prepared = None
        return self._request

    def answer(self, sample: Sample) -> None:
        """The sample for the last `request()`: the next `reply()` returns it."""
        if self._request is None:
            raise RuntimeError("answer() without a pending request()")
        self._prepared = sample

    def reply(self, observation: Observation, state: PrivilegedState | None = None) -> str:
        """The prepared sample if there is one (it answers the observation given to `request()`);
        otherwise one sampler call for this observation alone."""
        sample = self._prepared
        if sample is None:
            request = self.request(observation)
            seed = (self._seed * SEED_STRIDE + self._calls) * STREAMS + self.stream
            sample = self.own_sampling.sample(self.sampler, [request], seed)[0]
        messages, images = self._request
        unparseable = parse_reply(sample.text).error is not None
        self.unparseable_replies += unparseable
        if self.keep_turns:
            self.turns.append(SampledTurn(messages, images, sample.text, sample.token_ids, unparseable))
        self.chat.accept(sample.text)
        self._request = self._prepared = None
        self._calls += 1
        return sample.text


def server_policy(base_url: str, model: str, output_format: str = "mixed", history_length: int = DEFAULT_HISTORY,
                  use_image: bool = True, use_text: bool = False, **sampler_options: Any) -> ModelPolicy:
    """A ModelPolicy over an OpenAI-compatible server (`crossagent serve`, vLLM), named
    `openai:{model}:{format}`; `sampler_options` go to ServerSampler (temperature, max_tokens, api_key, ...)."""
    return ModelPolicy(ServerSampler(base_url, model, **sampler_options), output_format, history_length,
                       use_image, use_text, name=f"openai:{model}:{output_format}")
