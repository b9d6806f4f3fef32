"""The one episode loop: many episodes side by side in one process, their model replies batched.

Every round, each running episode decides its next action (bench.episode.Episode.decide). A
scripted agent, or an executor still at work, answers at once with a primitive action; an agent
that needs a model reply answers with a Decision, a generator that yields ReplyRequests. The
loop gathers the requests of every waiting episode, answers them with ONE sampler call, sends
each its sample, and repeats until every Decision has returned its action (an executor that
stops at once asks again within the same step). Then every episode steps its world. New
episodes fill the slots of finished ones.

Each request carries its own seed (derived from the episode's task, trial and call index), and
samplers draw each reply from its seed alone, so an episode is the same whatever the slots,
the batch it shared, or an interruption and resume.

An episode that raises ends as a failure with its traceback; the others go on.
"""

from __future__ import annotations

import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crossagent.agents.base import Agent, Decision
from crossagent.bench.episode import Episode, EpisodeResult, StepHook
from crossagent.envs.crafter_env import CrafterEnv
from crossagent.progress import progress_bar
from crossagent.models.reply_request import ReplyRequest, ReplySampler, Sample
from crossagent.tasks.task import Task


@dataclass
class LoopStats:
    episodes: int = 0
    env_steps: int = 0
    generate_calls: int = 0  # sampler calls
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

    def sample(self, sampler: ReplySampler, requests: list[ReplyRequest]) -> list[Sample]:
        started = time.perf_counter()
        samples = sampler.sample(requests)
        if len(samples) != len(requests):
            raise RuntimeError(f"the sampler answered {len(samples)} of {len(requests)} requests")
        self.generation_seconds += time.perf_counter() - started
        self.generate_calls += 1
        self.replies += len(samples)
        self.generated_tokens += sum(len(sample.token_ids) for sample in samples)
        return samples


@dataclass(frozen=True)
class Finished:
    """An episode that ended: its result, its Episode (agent and hook included), and the traceback if it raised."""

    index: int  # its position in the jobs
    result: EpisodeResult
    episode: Episode | None  # None if it raised before it started
    exception: Exception | None = None

    @property
    def error(self) -> str | None:
        """The traceback, as stored with a failed episode."""
        return None if self.exception is None else "".join(traceback.format_exception(self.exception))


MakeEpisode = Callable[[int, Task, int], Episode]  # (job index, task, trial) -> a started Episode


def run_episodes(jobs: Sequence[tuple[Task, int]], make_episode: MakeEpisode, on_finished: Callable[[Finished], None],
                 slots: int = 1, sampler: ReplySampler | None = None, progress: bool | str = False) -> LoopStats:
    """Run every (task, trial) job, up to `slots` at a time; `on_finished` gets each episode as it ends.
    `sampler` answers the agents' reply requests (None: the agents never ask; a request raises).
    `progress`: False, or the bar's description."""
    if slots < 1:
        raise ValueError(f"slots must be at least 1, got {slots}")
    stats = LoopStats()
    started = time.perf_counter()
    todo = deque(enumerate(jobs))
    running: list[tuple[int, Episode]] = []
    with progress_bar(len(todo), progress or "", enabled=bool(progress)) as bar:
        def finish(found: Finished) -> None:
            on_finished(found)
            stats.episodes += 1
            bar.update(1)

        while todo or running:
            while todo and len(running) < slots:
                index, (task, trial) = todo.popleft()
                try:
                    running.append((index, make_episode(index, task, trial)))
                except Exception as exception:
                    finish(Finished(index, EpisodeResult.failed(task, trial), None, exception))
            actions, errors = _decide_all(running, sampler, stats)
            still_running = []
            for index, episode in running:
                exception = errors.get(index)
                if exception is None:
                    stats.env_steps += 1
                    try:
                        if not episode.advance(actions[index]):
                            still_running.append((index, episode))
                            continue
                    except Exception as raised:
                        exception = raised
                finish(Finished(index, _result(episode, exception), episode, exception))
            running = still_running
            stats.seconds = time.perf_counter() - started
            bar.set_postfix(steps_per_s=f"{stats.steps_per_second:.1f}", refresh=False)
    return stats


def _decide_all(running: list[tuple[int, Episode]], sampler: ReplySampler | None,
                stats: LoopStats) -> tuple[dict[int, int], dict[int, Exception]]:
    """Each running episode's action, and the exception of each whose decision raised. Decisions waiting
    for replies are answered together, one sampler call per round, until all have returned."""
    actions: dict[int, int] = {}
    errors: dict[int, Exception] = {}
    waiting: dict[int, tuple[Decision, ReplyRequest]] = {}

    def resume(index: int, decision: Decision, sample: Sample | None) -> None:
        try:
            waiting[index] = decision, decision.send(sample)
        except StopIteration as returned:
            actions[index] = returned.value
        except Exception as exception:
            errors[index] = exception

    for index, episode in running:
        try:
            decided = episode.decide()
        except Exception as exception:
            errors[index] = exception
            continue
        if isinstance(decided, int):
            actions[index] = decided
        else:
            resume(index, decided, None)
    while waiting:
        if sampler is None:
            raise RuntimeError("an agent asked for a model reply, but this loop has no sampler")
        batch = list(waiting.items())
        waiting.clear()
        samples = stats.sample(sampler, [request for _, (_, request) in batch])
        for (index, (decision, _)), sample in zip(batch, samples):
            resume(index, decision, sample)
    return actions, errors


def _result(episode: Episode, exception: Exception | None) -> EpisodeResult:
    if exception is None:
        return episode.finish()
    return EpisodeResult.failed(episode.task, episode.trial, episode.elapsed())


def run_episode(env: CrafterEnv, agent: Agent, task: Task, trial: int, sampler: ReplySampler | None = None,
                hook: StepHook | None = None, record_frames: bool = False, frame_size: int = 256) -> EpisodeResult:
    """Run one episode until success, death or the task's budget; raises what the episode raised."""
    finished: list[Finished] = []
    run_episodes([(task, trial)], lambda *_: Episode(env, agent, task, trial, hook, record_frames, frame_size),
                 finished.append, sampler=sampler)
    if finished[0].exception is not None:
        raise finished[0].exception
    return finished[0].result
