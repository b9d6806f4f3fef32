"""Rollouts for multi-turn GRPO: groups of episodes from one start, answered in batched rounds.

A batch is a list of episode specs. The members of a group share the task, its world seed,
its start state and the dynamics seed (one trial number), so they start identical and differ
only by the sampled replies. Every episode runs in the episode loop (bench.episode_loop: one
sampler call per round for every episode waiting for a reply) with a LevelAgent in dynamic
mode: a reply that ends at an upper level runs that level's executor for up to
`requery_every` steps.

Per turn the ModelPolicy records the request (messages, images), the reply, its token ids as
sampled, and whether it was unparseable (`parse_reply(reply).error is not None`: no level
tag, or a malformed executed line). The return of an episode is

    success_reward * success - invalid_reply_penalty * unparseable_replies - call_cost * calls

and every turn of the episode gets it. Old log-probabilities are not recorded here: the
trainer recomputes them with a forward pass (see train/grpo.py).

A spec with an `expert_prefix` f starts its episode with the expert's first steps of its own solution of the
same trial (round(f x its length), at least 1 and at most all but the last), then hands over to the model
(agents.expert_prefix says why). Members of a group share the prefix, so they still start identical; the turns
and the level statistics are the model's only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np

from crossagent.agents.base import Agent
from crossagent.agents.expert import ExpertAgent
from crossagent.agents.expert_prefix import ExpertPrefixAgent
from crossagent.agents.level_agent import REQUERY_EVERY, LevelAgent
from crossagent.agents.model_policy import ModelPolicy, SampledTurn
from crossagent.bench.episode import Episode, EpisodeResult, make_env
from crossagent.bench.episode_loop import Finished, LoopStats, ReplySampler, run_episode, run_episodes
from crossagent.tasks.task import Task


@dataclass(frozen=True)
class RolloutSettings:
    max_episode_steps: int = 200  # caps each task's budget
    requery_every: int = REQUERY_EVERY  # k: an upper-level executor runs at most k steps before the next reply
    history_length: int = 3  # past turns (frames and replies) in every prompt
    output_format: str = "mixed"  # models.prompts output format: every level
    use_image: bool = True
    use_text: bool = False
    prompt_style: str = "full"  # models.prompts.PROMPT_STYLES, as in the model's SFT data
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
    expert_prefix: float | None = None  # where along the expert's solution the model takes over; None: at the start


def group_specs(tasks: Sequence[Task], group_size: int, first_trial: int,
                expert_prefixes: Sequence[float | None] | None = None) -> list[EpisodeSpec]:
    """`group_size` identical starts per task: group g is tasks[g] with trial first_trial + g, and
    expert_prefixes[g] (default: none)."""
    prefixes = expert_prefixes if expert_prefixes is not None else [None] * len(tasks)
    if len(prefixes) != len(tasks):
        raise ValueError(f"{len(prefixes)} expert prefixes for {len(tasks)} tasks")
    return [EpisodeSpec(task, first_trial + group, group, member, prefixes[group])
            for group, task in enumerate(tasks) for member in range(group_size)]


# Which groups may get an expert prefix: any group, or only those of a kind whose newest group started without a
# prefix solved no episode (train/curriculum.failing_kinds): a prefix given to a kind the model already solves mostly
# makes an easy group easier (docs/grpo.md, expert prefixes on 3 seeds).
PrefixKinds = Literal["all", "failing"]
PREFIX_KINDS = get_args(PrefixKinds)


def check_prefix_settings(share: float, earliest: float, kinds: PrefixKinds = "all") -> None:
    if kinds not in PREFIX_KINDS:
        raise ValueError(f"expert_prefix_kinds must be one of {', '.join(PREFIX_KINDS)}, got {kinds!r}")
    if not 0 <= share <= 1:
        raise ValueError(f"the share of groups with an expert prefix must be within 0..1, got {share}")
    if not 0 <= earliest < 1:
        raise ValueError(f"the earliest hand-over along the expert's solution must be within 0..1 (1 excluded), "
                         f"got {earliest}")


def draw_expert_prefixes(groups: int, share: float, earliest: float, rng: np.random.Generator,
                         eligible: Sequence[bool] | None = None) -> list[float | None]:
    """Each group, with probability `share`, gets a hand-over point drawn uniformly from [earliest, 1) of the
    expert's solution; with `eligible`, only the groups it marks (the same draws, the others masked)."""
    check_prefix_settings(share, earliest)
    if eligible is not None and len(eligible) != groups:
        raise ValueError(f"{len(eligible)} eligibility marks for {groups} groups")
    if share == 0:  # draws nothing, so runs without prefixes are the runs made before they existed
        return [None] * groups
    chosen, fractions = rng.random(groups) < share, rng.random(groups)
    allowed = eligible if eligible is not None else [True] * groups
    return [earliest + (1 - earliest) * float(fraction) if take and allow else None
            for take, fraction, allow in zip(chosen, fractions, allowed)]


def expert_solution_steps(task: Task, trial: int) -> int | None:
    """The steps the expert takes to solve `task` in `trial` (same start, same dice), or None if it fails."""
    expert = ExpertAgent()
    result = run_episode(make_env(expert), expert, task, trial)
    return result.steps if result.success else None


def prefix_steps(fraction: float, solution_steps: int | None) -> int:
    """The expert's steps before the hand-over: 0 when it has no solution to share, else at least 1 and at
    most all but its last."""
    if solution_steps is None or solution_steps < 2:
        return 0
    return min(max(round(fraction * solution_steps), 1), solution_steps - 1)


@dataclass
class EpisodeRollout:
    spec: EpisodeSpec
    result: EpisodeResult  # result.extra: the agent's level counts, plus unparseable_replies and grpo_return
    turns: list[SampledTurn]
    episode_return: float


@dataclass
class RolloutBatch:
    episodes: list[EpisodeRollout]
    stats: LoopStats  # steps, sampler calls, tokens and timings of the collection

    @property
    def turns(self) -> list[SampledTurn]:
        return [turn for episode in self.episodes for turn in episode.turns]


def episode_return(success: bool, unparseable_replies: int, calls: int, settings: RolloutSettings) -> float:
    return (settings.success_reward * float(success) - settings.invalid_reply_penalty * unparseable_replies
            - settings.call_cost * calls)


def turn_rewards(episode: EpisodeRollout, settings: RolloutSettings) -> list[float]:
    """The episode's return spread over its turns: each reply pays its own penalty and call cost, the last one
    also earns the success reward. They sum to the episode's return."""
    rewards = [-settings.invalid_reply_penalty * turn.unparseable - settings.call_cost for turn in episode.turns]
    if rewards:
        rewards[-1] += settings.success_reward * float(episode.result.success)
    return rewards


def turn_state(turn: SampledTurn) -> bytes:
    """What the model saw when it replied (the prompt's messages and images), as a digest: equal digests, equal
    prompts. Step-level advantages (grpo_loss.step_advantages) compare the replies to one prompt."""
    digest = hashlib.sha256(json.dumps(turn.messages, sort_keys=True, default=str).encode())
    for image in turn.images:
        digest.update(np.ascontiguousarray(image).tobytes())
    return digest.digest()


def collect_rollouts(specs: Sequence[EpisodeSpec], sampler: ReplySampler, settings: RolloutSettings,
                     seed: int) -> RolloutBatch:
    """Run every spec's episode to its end (success, death, or max_episode_steps), all side by side.
    `seed` seeds the replies (with each episode's seed, call index and group member)."""
    jobs = [(replace(spec.task, budget=min(spec.task.budget, settings.max_episode_steps)), spec.trial)
            for spec in specs]
    finished: dict[int, Finished] = {}
    policies: dict[int, ModelPolicy] = {}
    solutions: dict[tuple[str, int], int | None] = {}  # the expert's steps per (task, trial): once per group

    def make_episode(index: int, task: Task, trial: int) -> Episode:
        # Group members share the episode seed; the stream keeps their replies independent.
        policy = ModelPolicy(settings.output_format, settings.history_length, settings.use_image, settings.use_text,
                             name="grpo", keep_turns=True, seed=seed, stream=specs[index].member,
                             prompt_style=settings.prompt_style)
        agent: Agent = LevelAgent(policy, mode="dynamic", requery_every=settings.requery_every,
                                  image_size=settings.image_size)
        if specs[index].expert_prefix is not None:
            if (task.id, trial) not in solutions:
                solutions[task.id, trial] = expert_solution_steps(task, trial)
            agent = ExpertPrefixAgent(agent, prefix_steps(specs[index].expert_prefix, solutions[task.id, trial]))
        policies[index] = policy
        return Episode(make_env(agent, settings.image_size), agent, task, trial)

    def keep(done: Finished) -> None:
        if done.error is not None:
            raise RuntimeError(f"a rollout of {done.result.task_id} failed:\n{done.error}")
        finished[done.index] = done

    stats = run_episodes(jobs, make_episode, keep, slots=max(1, len(specs)), sampler=sampler)
    episodes = []
    for index, spec in enumerate(specs):
        result, policy = finished[index].result, policies[index]
        value = episode_return(result.success, policy.unparseable_replies, len(policy.turns), settings)
        result.extra = {**result.extra, "unparseable_replies": policy.unparseable_replies, "grpo_return": value}
        episodes.append(EpisodeRollout(spec, result, policy.turns, value))
    return RolloutBatch(episodes, stats)
