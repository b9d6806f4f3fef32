"""A reply policy over a vision-language model: prompts from models.prompts, replies from the episode loop.

The prompt is a system prompt for the output format, the task, the last H turns (observation
and reply) and the current observation. `reply()` yields one ReplyRequest, seeded from the run's
seed, the episode's seed, the call index and the policy's stream, and returns the reply that the
episode loop (bench.episode_loop) sends back: a model in this process (LocalSampler) or an
OpenAI-compatible server (ServerSampler) answers it, batched with the other waiting episodes.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from crossagent.actions.chain import parse_reply
from crossagent.agents.base import ReplyDecision
from crossagent.envs.crafter_env import Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.models import prompts
from crossagent.models.prompts import DEFAULT_HISTORY, build_messages, check_format
from crossagent.models.reply_request import Chat, ReplyRequest
from crossagent.tasks.task import Task

STREAMS = 1_000  # policies sharing an episode seed (GRPO group members) draw from distinct streams


def reply_seed(run_seed: int, episode_seed: int, call: int, stream: int) -> int:
    """The seed of one reply: a 31-bit hash of where it is asked (any server accepts it as a seed)."""
    key = f"{run_seed}/{episode_seed}/{call}/{stream}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "big") & 0x7FFF_FFFF


@dataclass(frozen=True)
class SampledTurn:
    """One reply as GRPO trains on it: the request, the reply with its sampled token ids, whether it
    was unparseable (`parse_reply(reply).error is not None`), and what its grammar was made of (a
    constraining sampler held it to the format's grammar; the loss renormalises over that grammar)."""

    messages: list[dict]
    images: list[np.ndarray]
    reply: str
    token_ids: tuple[int, ...]
    unparseable: bool
    output_format: str | None = None
    final_level: str | None = None


class ChatEpisode:
    """The prompt side of a chat policy: the task and the last H turns."""

    def __init__(self, output_format: str, history_length: int = DEFAULT_HISTORY, use_image: bool = True,
                 use_text: bool = False, prompt_style: str = "full"):
        check_format(output_format)
        if not (use_image or use_text):
            raise ValueError("a chat policy needs the image, the text, or both")
        if history_length < 0:
            raise ValueError(f"history length {history_length} is negative")
        self.output_format = output_format
        self.prompt_style = prompts.check_prompt_style(prompt_style)
        self.history_length = history_length
        self.use_image = use_image
        self.use_text = use_text
        self.instruction: str | None = None
        self.history: deque[prompts.Turn] = deque(maxlen=history_length)

    def reset(self, instruction: str) -> None:
        self.instruction = instruction
        self.history.clear()

    def turn(self, observation: Observation) -> prompts.Turn:
        """The observation as the turn awaiting a reply."""
        if self.instruction is None:
            raise RuntimeError("turn() before reset(): the policy has no task")
        image = observation.image if self.use_image else None
        text = observation.text if self.use_text else None
        if (self.use_image and image is None) or (self.use_text and text is None):
            raise ValueError(f"the observation lacks the {'image' if self.use_image and image is None else 'text'} "
                             f"this policy reads")
        return prompts.Turn(image, text, "")

    def prompt(self, turn: prompts.Turn) -> Chat:
        """The messages and images asking for `turn`'s reply."""
        return build_messages(self.output_format, self.instruction, list(self.history), turn.image, turn.text,
                              self.history_length, self.prompt_style)

    def remember(self, turn: prompts.Turn, reply: str) -> None:
        self.history.append(replace(turn, reply=reply))


class ModelPolicy:
    """The ReplyPolicy of a model agent. Counts its unparseable replies and, with `keep_turns`,
    records every reply as a SampledTurn (GRPO's training data). `seed` is the run's sampling seed;
    `stream` separates policies that share an episode seed (GRPO group members). `final_level` asks a
    constraining sampler for chains that end at that level (slow mode executes the `Action:` line)."""

    uses_privileged_state = False

    def __init__(self, output_format: str = "mixed", history_length: int = DEFAULT_HISTORY, use_image: bool = True,
                 use_text: bool = False, name: str | None = None, keep_turns: bool = False, seed: int = 0,
                 stream: int = 0, prompt_style: str = "full", final_level: str | None = None):
        self.chat = ChatEpisode(output_format, history_length, use_image, use_text, prompt_style)
        self.needs_image = use_image
        self.needs_text = use_text
        self.name = name or f"model:{output_format}"
        self.keep_turns = keep_turns
        if not 0 <= stream < STREAMS:
            raise ValueError(f"stream {stream} is not in [0, {STREAMS})")
        self.seed = seed
        self.stream = stream
        self.final_level = final_level
        self._reset_episode(episode_seed=0)

    def _reset_episode(self, episode_seed: int) -> None:
        self.turns: list[SampledTurn] = []
        self.unparseable_replies = 0
        self._episode_seed = episode_seed
        self._calls = 0

    def reset(self, task: Task, seed: int) -> None:
        self.chat.reset(task.instruction)
        self._reset_episode(seed)

    def reply(self, observation: Observation, state: PrivilegedState | None = None) -> ReplyDecision:
        turn = self.chat.turn(observation)
        messages, images = self.chat.prompt(turn)
        sample = yield ReplyRequest(messages, images, reply_seed(self.seed, self._episode_seed, self._calls,
                                                                 self.stream), self.chat.output_format,
                                    self.final_level)
        unparseable = parse_reply(sample.text).error is not None
        self.unparseable_replies += unparseable
        if self.keep_turns:
            self.turns.append(SampledTurn(messages, images, sample.text, sample.token_ids, unparseable,
                                          self.chat.output_format, self.final_level))
        self.chat.remember(turn, sample.text)
        self._calls += 1
        return sample.text
