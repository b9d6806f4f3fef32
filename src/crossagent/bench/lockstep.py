"""Many model-agent episodes side by side in one process, with one batched sampler call per step.

Every step, the episodes whose agent is about to ask its policy (LevelAgent.wants_reply) are
answered together: each ModelPolicy's `request()` goes into ONE `sampler.sample` call, each
sample is handed back with `answer()`, then every episode takes its step. A policy that needs
a second reply within the same step (its executor stopped at once) asks its sampler alone.
New episodes fill the slots of finished ones. No threads: the loop is as reproducible as a
serial one (the batch of round r is seeded with seed + r; replies asked alone with their
episode's seed and call index).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from crossagent.agents.level_agent import LevelAgent
from crossagent.agents.model_policy import ModelPolicy
from crossagent.bench.episode import Episode, EpisodeResult, make_env
from crossagent.models.samplers import ReplySampler, SamplerMeter
from crossagent.tasks.task import Task


@dataclass
class LockstepStats:
    episodes: int = 0
    env_steps: int = 0
    generate_calls: int = 0  # sampler calls: one per round, plus those of policies asking alone
    replies: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0  # wall time of the whole run
    generation_seconds: float = 0.0  # of which inside the sampler

    @property
    def steps_per_second(self) -> float:
        """Env steps per second of wall time (generation included)."""
        return self.env_steps / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of wall time."""
        return self.generated_tokens / self.seconds if self.seconds else 0.0

    @property
    def generation_tokens_per_second(self) -> float:
        """Generated tokens per second spent in the sampler."""
        return self.generated_tokens / self.generation_seconds if self.generation_seconds else 0.0

    def count(self, meter: SamplerMeter) -> None:
        self.generate_calls += meter.calls
        self.replies += meter.replies
        self.generated_tokens += meter.generated_tokens
        self.generation_seconds += meter.seconds


def run_lockstep(jobs: Sequence[tuple[Task, int]], make_agent: Callable[[int, Task, int], LevelAgent], slots: int,
                 sampler: ReplySampler, seed: int, on_result: Callable[[int, EpisodeResult, LevelAgent], None],
                 progress: bool = True) -> LockstepStats:
    """Run every (task, trial) job, up to `slots` at a time, with agents over ModelPolicies that share
    `sampler` (`make_agent(job index, task, trial)` builds each); `on_result(job index, result, agent)` gets each episode as it ends."""
    if slots < 1:
        raise ValueError(f"slots must be at least 1, got {slots}")
    stats = LockstepStats()
    started = time.perf_counter()
    todo = deque(enumerate(jobs))
    running: list[tuple[int, Episode]] = []
    rounds = 0
    with tqdm(total=len(todo), unit="ep", desc="episodes", disable=not progress, dynamic_ncols=True) as bar:
        while todo or running:
            while todo and len(running) < slots:
                index, (task, trial) = todo.popleft()
                agent = make_agent(index, task, trial)
                running.append((index, Episode(make_env(agent, agent.image_size), agent, task, trial)))
            waiting = [episode for _, episode in running if episode.agent.wants_reply()]
            if waiting:
                policies: list[ModelPolicy] = [episode.agent.policy for episode in waiting]
                requests = [policy.request(episode.observation) for policy, episode in zip(policies, waiting)]
                meter = SamplerMeter()
                for policy, sample in zip(policies, meter.sample(sampler, requests, seed + rounds)):
                    policy.answer(sample)
                stats.count(meter)
                rounds += 1
            still_running = []
            for index, episode in running:
                stats.env_steps += 1
                if not episode.step():
                    still_running.append((index, episode))
                    continue
                stats.count(episode.agent.policy.own_sampling)
                on_result(index, episode.finish(), episode.agent)
                stats.episodes += 1
                bar.update(1)
            running = still_running
            stats.seconds = time.perf_counter() - started
            bar.set_postfix(steps_per_s=f"{stats.steps_per_second:.1f}", refresh=False)
    return stats
