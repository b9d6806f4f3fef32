"""Rollouts for multi-turn GRPO: groups of episodes from one start, answered in batched rounds.

A batch is a list of episode specs. The members of a group share the task, its world seed,
its start state and the dynamics seed (one trial number), so they start identical and differ
only by the sampled replies. Every episode runs the benchmark's own episode loop
(bench.episode.run_episode) with a LevelAgent in dynamic mode: a reply that ends at an upper
level runs that level's executor for up to `requery_every` steps.

Lockstep rounds. Each episode runs in its own thread, and the threads take turns with one
sampler: in a round, every live episode runs until its agent asks for a reply (a new call,
the k-step re-query, or an executor that ended), and once every live episode is waiting,
all their requests are answered by ONE batched sampler call. Threads, because LevelAgent.act
asks its policy synchronously, sometimes twice in one step (an executor that stops at once);
a thread per episode runs that code unchanged. Only one thread computes at a time, so a
round is as deterministic as a serial loop: requests are batched in episode order.

Per turn we record the request (messages, images), the reply, its token ids as sampled, and
whether it was unparseable (`parse_reply(reply).error is not None`: no level tag, or a
malformed executed line). The return of an episode is

    success_reward * success - invalid_reply_penalty * unparseable_replies - call_cost * calls

and every turn of the episode gets it. Old log-probabilities are not recorded here: the
trainer recomputes them with a forward pass (see train/grpo.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Protocol

import httpx
import numpy as np
from transformers import PreTrainedModel
from transformers.processing_utils import ProcessorMixin

from crossagent.actions.chain import parse_reply
from crossagent.agents.level_agent import LevelAgent
from crossagent.agents.model_policy import ChatEpisode
from crossagent.agents.openai_policy import ChatServerError, error_message
from crossagent.bench.episode import EpisodeResult, run_episode, trial_seed
from crossagent.bench.results_store import ResultsStore
from crossagent.envs.crafter_env import CrafterEnv, Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.models.generation import VISION_TOKENS, GenerationSettings, Request, generate_batch
from crossagent.models.openai_messages import to_openai_messages
from crossagent.models.tokenizer import IM_END
from crossagent.tasks.task import Task


@dataclass(frozen=True)
class RolloutSettings:
    max_episode_steps: int | None = 200  # None: the task's own budget (the benchmark's rule)
    requery_every: int = 4  # k: an upper-level executor runs at most k steps before the next reply
    history_length: int = 3  # past turns (frames and replies) in every prompt
    output_format: str = "mixed"  # models.prompts output format: every level
    use_image: bool = True
    use_text: bool = False
    image_size: int = 64
    success_reward: float = 1.0
    invalid_reply_penalty: float = 0.1  # per unparseable reply
    call_cost: float = 0.0  # per reply (a price on asking the model; 0 in the released settings)


@dataclass(frozen=True)
class EpisodeSpec:
    task: Task
    trial: int  # picks the dynamics seed (bench.episode.trial_seed); a group shares it
    group: int  # advantages are normalised within a group
    member: int = 0  # index within the group


def group_specs(tasks: Sequence[Task], group_size: int, first_trial: int) -> list[EpisodeSpec]:
    """`group_size` identical starts per task: group g is tasks[g] with trial first_trial + g."""
    return [EpisodeSpec(task, first_trial + group, group, member)
            for group, task in enumerate(tasks) for member in range(group_size)]


@dataclass(frozen=True)
class Sample:
    text: str
    token_ids: tuple[int, ...]  # as generated; the stop token included when one was generated


@dataclass(frozen=True)
class Turn:
    messages: list[dict]
    images: list[np.ndarray]
    reply: str
    token_ids: tuple[int, ...]
    unparseable: bool


@dataclass
class EpisodeRollout:
    spec: EpisodeSpec
    result: EpisodeResult  # result.extra: the agent's level counts, plus unparseable_replies and grpo_return
    turns: list[Turn]
    episode_return: float


@dataclass
class RolloutBatch:
    episodes: list[EpisodeRollout]
    seconds: float  # wall time of the whole collection
    generation_seconds: float  # of which inside the sampler
    generated_tokens: int
    rounds: int  # sampler calls

    @property
    def turns(self) -> list[Turn]:
        return [turn for episode in self.episodes for turn in episode.turns]

    @property
    def env_steps(self) -> int:
        return sum(episode.result.steps for episode in self.episodes)

    @property
    def env_steps_per_second(self) -> float:
        """Primitive env steps per second of rollout wall time (generation included)."""
        return self.env_steps / self.seconds if self.seconds else 0.0

    @property
    def generated_tokens_per_second(self) -> float:
        """Generated tokens per second spent in the sampler."""
        return self.generated_tokens / self.generation_seconds if self.generation_seconds else 0.0


def episode_return(success: bool, unparseable_replies: int, calls: int, settings: RolloutSettings) -> float:
    return (settings.success_reward * float(success) - settings.invalid_reply_penalty * unparseable_replies
            - settings.call_cost * calls)


# --- samplers: where replies come from ------------------------------------------------------------
# A reply holding one of these would break the next prompt: the processor counts <|image_pad|> as an image
# and the rotary positions treat <|vision_start|> as the start of one. Samplers never produce them.


class ReplySampler(Protocol):
    def sample(self, requests: list[Request], seed: int) -> list[Sample]: ...


class LocalSampler:
    """One batched `generate_batch` call per round, keeping the sampled token ids (the policy gradient
    needs the tokens that were sampled, not a re-tokenisation)."""

    def __init__(self, model: PreTrainedModel, processor: ProcessorMixin, settings: GenerationSettings):
        self.model = model
        self.processor = processor
        self.settings = settings

    def sample(self, requests: list[Request], seed: int) -> list[Sample]:
        completions = generate_batch(self.model, self.processor, requests, replace(self.settings, seed=seed))
        return [Sample(completion.reply, completion.token_ids) for completion in completions]


class ServerSampler:
    """Replies from an OpenAI-compatible server (vLLM, `crossagent serve`), the protocol of
    agents.openai_policy.OpenAIChatPolicy (same message conversion, same errors). A round's requests
    go concurrently, so the server batches them. The server returns text only: token ids are the
    reply re-tokenised (+ <|im_end|>), and the trainer's recompute pass supplies the old log-probs."""

    def __init__(self, base_url: str, model: str, tokenizer, temperature: float = 1.0, top_p: float = 1.0,
                 max_tokens: int = 64, timeout: float = 120.0, client: httpx.Client | None = None):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.tokenizer = tokenizer
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.client = client or httpx.Client(timeout=timeout)
        self.end_id = tokenizer.convert_tokens_to_ids(IM_END)

    def sample(self, requests: list[Request], seed: int) -> list[Sample]:
        with ThreadPoolExecutor(max_workers=max(1, len(requests))) as pool:
            return list(pool.map(self._one, requests, [seed * 1_000 + row for row in range(len(requests))]))

    def _one(self, request: Request, seed: int) -> Sample:
        messages, images = request
        body = {"model": self.model, "messages": to_openai_messages(messages, images), "temperature": self.temperature,
                "top_p": self.top_p, "max_tokens": self.max_tokens, "seed": seed}
        try:
            response = self.client.post(self.url, json=body)
        except httpx.HTTPError as error:
            raise ChatServerError(f"{self.url}: {error}") from error
        if response.status_code != 200:
            raise ChatServerError(f"{self.url}: HTTP {response.status_code}: {error_message(response)}")
        try:
            choice = response.json()["choices"][0]
            text = choice["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise ChatServerError(f"{self.url}: the answer has no choices[0].message.content: "
                                  f"{response.text[:200]}") from error
        for token in VISION_TOKENS:
            text = text.replace(token, "")
        text = text.strip()
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        stopped = choice.get("finish_reason") != "length"
        return Sample(text, tuple(ids + [self.end_id] if stopped else ids))


# --- lockstep rounds ----------------------------------------------------------------------------
class RolloutAborted(RuntimeError):
    """Another episode or the sampler failed; this episode stops waiting."""


class Rounds:
    """Collects the waiting episodes' requests and answers them with one sampler call per round."""

    def __init__(self, sampler: ReplySampler, episodes: int, seed: int):
        self.sampler = sampler
        self.seed = seed
        self._condition = threading.Condition()
        self._live = set(range(episodes))
        self._pending: dict[int, Request] = {}
        self._answers: dict[int, Sample] = {}
        self._aborted = False
        self.rounds = 0
        self.generation_seconds = 0.0
        self.generated_tokens = 0

    def ask(self, episode: int, request: Request) -> Sample:
        """Called from an episode's thread; blocks until its round is answered."""
        with self._condition:
            self._pending[episode] = request
            self._condition.notify_all()
            self._condition.wait_for(lambda: episode in self._answers or self._aborted)
            if self._aborted:
                raise RolloutAborted("rollout aborted")
            return self._answers.pop(episode)

    def finish(self, episode: int) -> None:
        with self._condition:
            self._live.discard(episode)
            self._condition.notify_all()

    def abort(self) -> None:
        with self._condition:
            self._aborted = True
            self._condition.notify_all()

    def serve(self) -> None:
        """Answer rounds until every episode has finished (run in the collecting thread)."""
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._aborted or len(self._pending) == len(self._live))
                if self._aborted or not self._live:
                    return
                waiting = sorted(self._pending.items())
                self._pending.clear()
            started = time.perf_counter()
            samples = self.sampler.sample([request for _, request in waiting], self.seed + self.rounds)
            self.generation_seconds += time.perf_counter() - started
            self.generated_tokens += sum(len(sample.token_ids) for sample in samples)
            self.rounds += 1
            with self._condition:
                self._answers.update((episode, sample) for (episode, _), sample in zip(waiting, samples))
                self._condition.notify_all()


class RolloutPolicy:
    """The ReplyPolicy of one rollout episode: builds the prompt, asks its round, records the turn."""

    uses_privileged_state = False

    def __init__(self, chat: ChatEpisode, ask: Callable[[Request], Sample]):
        self.chat = chat
        self.ask = ask
        self.name = "grpo"
        self.needs_image = chat.use_image
        self.needs_text = chat.use_text
        self.turns: list[Turn] = []

    def reset(self, task: Task, seed: int) -> None:
        self.chat.reset(task.instruction)
        self.turns = []

    def reply(self, observation: Observation, state: PrivilegedState | None) -> str:
        messages, images = self.chat.request(observation)
        sample = self.ask((messages, images))
        self.chat.accept(sample.text)
        self.turns.append(Turn(messages, images, sample.text, sample.token_ids,
                               parse_reply(sample.text).error is not None))
        return sample.text


def collect_rollouts(specs: Sequence[EpisodeSpec], sampler: ReplySampler, settings: RolloutSettings,
                     seed: int) -> RolloutBatch:
    """Run every spec's episode to its end (success, death, or max_episode_steps) in lockstep rounds."""
    started = time.perf_counter()
    rounds = Rounds(sampler, len(specs), seed)
    policies, agents, envs = [], [], []
    for index, spec in enumerate(specs):
        chat = ChatEpisode(settings.output_format, settings.history_length, settings.use_image, settings.use_text)
        policies.append(RolloutPolicy(chat, lambda request, index=index: rounds.ask(index, request)))
        agents.append(LevelAgent(policies[-1], mode="dynamic", requery_every=settings.requery_every,
                                 image_size=settings.image_size))
        envs.append(CrafterEnv(settings.image_size, observe_image=settings.use_image,
                               observe_text=settings.use_text))
    # Generate each world here, once: the snapshot cache the envs share is not meant for threads.
    for env, spec in zip(envs, specs):
        env.reset(seed=spec.task.world_seed, options={"start": spec.task.start,
                                                      "dynamics_seed": trial_seed(spec.task, spec.trial)})
    results: list[EpisodeResult | None] = [None] * len(specs)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        spec = specs[index]
        task = spec.task
        if settings.max_episode_steps is not None:
            task = replace(task, budget=min(task.budget, settings.max_episode_steps))
        try:
            results[index] = run_episode(envs[index], agents[index], task, spec.trial)
        except RolloutAborted:
            pass
        except BaseException as error:  # handed to the collecting thread, which raises it
            errors.append(error)
            rounds.abort()
        finally:
            rounds.finish(index)

    threads = [threading.Thread(target=run, args=(index,), name=f"rollout-{index}", daemon=True)
               for index in range(len(specs))]
    for thread in threads:
        thread.start()
    try:
        rounds.serve()
    except BaseException:
        rounds.abort()
        raise
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    episodes = []
    for spec, policy, result in zip(specs, policies, results):
        unparseable = sum(turn.unparseable for turn in policy.turns)
        value = episode_return(result.success, unparseable, len(policy.turns), settings)
        result.extra = {**result.extra, "unparseable_replies": unparseable, "grpo_return": value}
        episodes.append(EpisodeRollout(spec, result, policy.turns, value))
    return RolloutBatch(episodes, time.perf_counter() - started, rounds.generation_seconds,
                        rounds.generated_tokens, rounds.rounds)


# --- evaluation --------------------------------------------------------------------------------
@dataclass
class EvaluationRun:
    planned: int
    ran: int
    batches: list[RolloutBatch] = field(default_factory=list)


def evaluate(sampler: ReplySampler, tasks: Sequence[Task], trials: int, settings: RolloutSettings,
             store: ResultsStore, agent_name: str, suite_name: str, episodes_per_batch: int = 32,
             seed: int = 0) -> EvaluationRun:
    """Run each task for `trials` trials (benchmark seeds) in lockstep batches; store every episode.

    Episodes already in the store under (agent_name, suite_name) are skipped, so a rerun resumes.
    """
    done = store.done_keys(agent_name, suite_name)
    specs = [EpisodeSpec(task, trial, group=index)
             for index, (task, trial) in enumerate((task, trial) for task in tasks for trial in range(trials))
             if (task.id, trial) not in done]
    run = EvaluationRun(planned=len(tasks) * trials, ran=len(specs))
    for start in range(0, len(specs), episodes_per_batch):
        batch = collect_rollouts(specs[start:start + episodes_per_batch], sampler, settings, seed + start)
        for episode in batch.episodes:
            store.add(episode.result, agent_name, suite_name)
        run.batches.append(batch)
    return run
