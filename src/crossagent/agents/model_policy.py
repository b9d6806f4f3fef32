"""A reply policy over a local vision-language model.

The prompt is models.prompts': a system prompt for the output format, the task, the last H
turns (observation and reply) and the current observation. `reply()` answers one
observation; a runner stepping many environments instead gathers `request()` of each
policy, answers them with one generate call (`reply_batch`), and hands each reply back
with `accept()`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import replace

from transformers import PreTrainedModel
from transformers.processing_utils import ProcessorMixin

from crossagent.envs.crafter_env import Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.models.generation import GenerationSettings, Request, generate_replies
from crossagent.models.prompts import DEFAULT_HISTORY, OUTPUT_FORMATS, Turn, build_messages
from crossagent.tasks.task import Task

SEED_STRIDE = 100_003  # seeds of successive calls in one episode never meet another episode's


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
        self.history: deque[Turn] = deque(maxlen=history_length)
        self._pending: Turn | None = None

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
        self._pending = Turn(image, text, "")
        return build_messages(self.output_format, self.instruction, list(self.history), image, text,
                              self.history_length)

    def accept(self, reply: str) -> None:
        if self._pending is None:
            raise RuntimeError("accept() without a pending request()")
        self.history.append(replace(self._pending, reply=reply))
        self._pending = None


class ModelPolicy:
    uses_privileged_state = False

    def __init__(self, model: PreTrainedModel, processor: ProcessorMixin, output_format: str = "mixed",
                 history_length: int = DEFAULT_HISTORY, settings: GenerationSettings = GenerationSettings(),
                 needs_image: bool = True, needs_text: bool = False, name: str | None = None):
        self.model = model
        self.processor = processor
        self.settings = settings
        self.needs_image = needs_image
        self.needs_text = needs_text
        self.chat = ChatEpisode(output_format, history_length, needs_image, needs_text)
        self.name = name or f"model:{output_format}"
        self._seed = 0
        self._calls = 0

    def reset(self, task: Task, seed: int) -> None:
        self.chat.reset(task.instruction)
        self._seed = seed
        self._calls = 0

    def request(self, observation: Observation) -> Request:
        return self.chat.request(observation)

    def accept(self, reply: str) -> None:
        self.chat.accept(reply)
        self._calls += 1

    def call_settings(self) -> GenerationSettings:
        """Sampling is reproducible per episode: unless fixed, the seed follows the episode seed and call index."""
        if self.settings.seed is not None or not self.settings.do_sample:
            return self.settings
        return replace(self.settings, seed=self._seed * SEED_STRIDE + self._calls)

    def reply(self, observation: Observation, state: PrivilegedState | None = None) -> str:
        request = self.request(observation)
        reply = generate_replies(self.model, self.processor, [request], self.call_settings())[0]
        self.accept(reply)
        return reply


def reply_batch(policies: Sequence[ModelPolicy], observations: Sequence[Observation]) -> list[str]:
    """One generate call for many environments' observations; the policies share one model and settings.

    A batch is seeded from its first policy, so sampled replies depend on the batch's make-up.
    """
    if len(policies) != len(observations):
        raise ValueError(f"{len(policies)} policies for {len(observations)} observations")
    if not policies:
        return []
    first = policies[0]
    if any(p.model is not first.model or p.processor is not first.processor or p.settings != first.settings
           for p in policies):
        raise ValueError("reply_batch: the policies must share one model, processor and generation settings")
    requests = [policy.request(observation) for policy, observation in zip(policies, observations)]
    replies = generate_replies(first.model, first.processor, requests, first.call_settings())
    for policy, reply in zip(policies, replies):
        policy.accept(reply)
    return replies
