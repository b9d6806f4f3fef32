"""Many episodes side by side in one process, with one batched generate call per step.

Every step, the episodes whose agent is about to ask its policy are answered together: one
`model.generate` for all of them (left-padded batch), the replies handed to their policies,
then every episode takes its step. A policy that needs a second reply within the same step
(its executor stopped at once) generates it alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from tqdm import tqdm

from crossagent.agents.level_agent import LevelAgent
from crossagent.agents.model_policy import ModelPolicy
from crossagent.bench.episode import Episode, EpisodeResult, make_env
from crossagent.envs.crafter_env import Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.models.generation import GenerationSettings, generate_batch
from crossagent.tasks.task import Task


class LockstepPolicy(ModelPolicy):
    """A model policy whose next reply may be prepared by a batched call."""

    prepared: str | None = None

    def reply(self, observation: Observation, state: PrivilegedState | None = None) -> str:
        if self.prepared is None:
            return super().reply(observation, state)
        reply, self.prepared = self.prepared, None
        return reply


@dataclass
class LockstepStats:
    episodes: int = 0
    env_steps: int = 0
    generate_calls: int = 0
    replies: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds else 0.0


def run_lockstep(episodes: Sequence[tuple[Task, int]], make_agent: Callable[[], LevelAgent], slots: int,
                 settings: GenerationSettings, on_result: Callable[[EpisodeResult], None],
                 progress: bool = True) -> LockstepStats:
    """Run `episodes` (task, trial) with up to `slots` at a time; `on_result` gets each as it ends."""
    stats = LockstepStats()
    started = time.perf_counter()
    todo = list(episodes)
    running: list[Episode] = []
    agents: dict[int, LevelAgent] = {}
    bar = tqdm(total=len(todo), unit="ep", desc="episodes", disable=not progress, dynamic_ncols=True)
    with bar:
        while todo or running:
            while todo and len(running) < slots:
                task, trial = todo.pop(0)
                agent = make_agent()
                episode = Episode(make_env(agent), agent, task, trial)
                agents[id(episode)] = agent
                running.append(episode)
            _prepare_replies([(e, agents[id(e)]) for e in running], settings, stats)
            for episode in list(running):
                stats.env_steps += 1
                if episode.step():
                    running.remove(episode)
                    agents.pop(id(episode))
                    on_result(episode.finish())
                    stats.episodes += 1
                    bar.update(1)
            stats.seconds = time.perf_counter() - started
            bar.set_postfix(steps_per_s=f"{stats.steps_per_second:.1f}", refresh=False)
    return stats


def _prepare_replies(pairs: list[tuple[Episode, LevelAgent]], settings: GenerationSettings,
                     stats: LockstepStats) -> None:
    waiting = [(episode, agent) for episode, agent in pairs if agent.wants_reply()]
    if not waiting:
        return
    first: LockstepPolicy = waiting[0][1].policy
    requests = [agent.policy.request(episode.observation) for episode, agent in waiting]
    if settings.do_sample and settings.seed is not None:
        settings = replace(settings, seed=settings.seed + stats.generate_calls)  # reproducible, not repeated
    completions = generate_batch(first.model, first.processor, requests, settings)
    stats.generate_calls += 1
    for (episode, agent), completion in zip(waiting, completions):
        agent.policy.accept(completion.reply)
        agent.policy.prepared = completion.reply
        stats.replies += 1
        stats.generated_tokens += completion.completion_tokens
