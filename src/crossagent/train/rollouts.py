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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from crossagent.agents.level_agent import REQUERY_EVERY, LevelAgent
from crossagent.agents.model_policy import ModelPolicy, SampledTurn
from crossagent.bench.episode import Episode, EpisodeResult, make_env
from crossagent.bench.episode_loop import Finished, LoopStats, ReplySampler, run_episodes
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


def group_specs(tasks: Sequence[Task], group_size: int, first_trial: int) -> list[EpisodeSpec]:
    """`group_size` identical starts per task: group g is tasks[g] with trial first_trial + g."""
    return [EpisodeSpec(task, first_trial + group, group, member)
            for group, task in enumerate(tasks) for member in range(group_size)]


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


def collect_rollouts(specs: Sequence[EpisodeSpec], sampler: ReplySampler, settings: RolloutSettings,
                     seed: int) -> RolloutBatch:
    """Run every spec's episode to its end (success, death, or max_episode_steps), all side by side.
    `seed` seeds the replies (with each episode's seed, call index and group member)."""
    jobs = [(replace(spec.task, budget=min(spec.task.budget, settings.max_episode_steps)), spec.trial)
            for spec in specs]
    finished: dict[int, Finished] = {}

    def make_episode(index: int, task: Task, trial: int) -> Episode:
        # Group members share the episode seed; the stream keeps their replies independent.
        policy = ModelPolicy(settings.output_format, settings.history_length, settings.use_image, settings.use_text,
                             name="grpo", keep_turns=True, seed=seed, stream=specs[index].member,
                             prompt_style=settings.prompt_style)
        agent = LevelAgent(policy, mode="dynamic", requery_every=settings.requery_every,
                           image_size=settings.image_size)
        return Episode(make_env(agent, settings.image_size), agent, task, trial)

    def keep(done: Finished) -> None:
        if done.error is not None:
            raise RuntimeError(f"a rollout of {done.result.task_id} failed:\n{done.error}")
        finished[done.index] = done

    stats = run_episodes(jobs, make_episode, keep, slots=max(1, len(specs)), sampler=sampler)
    episodes = []
    for index, spec in enumerate(specs):
        result, policy = finished[index].result, finished[index].episode.agent.policy
        value = episode_return(result.success, policy.unparseable_replies, len(policy.turns), settings)
        result.extra = {**result.extra, "unparseable_replies": policy.unparseable_replies, "grpo_return": value}
        episodes.append(EpisodeRollout(spec, result, policy.turns, value))
    return RolloutBatch(episodes, stats)
