"""The lockstep engine: one sampler call per round for every waiting episode, slots refilled, reproducible."""

from dataclasses import replace

import pytest

from crossagent.agents.level_agent import LevelAgent
from crossagent.agents.model_policy import SEED_STRIDE, STREAMS, ModelPolicy
from crossagent.bench.lockstep import run_lockstep
from crossagent.models.samplers import Sample
from crossagent.tasks.suite import load_suite

BUDGET = 5


class ScriptedSampler:
    """Always the same reply; records every call's batch size and seed."""

    def __init__(self, reply: str):
        self.reply = reply
        self.calls: list[tuple[int, int]] = []

    def sample(self, requests, seed):
        self.calls.append((len(requests), seed))
        return [Sample(self.reply, (1, 2)) for _ in requests]


def run(reply: str, mode: str, slots: int, jobs: int = 3, seed: int = 10):
    sampler = ScriptedSampler(reply)
    tasks = [replace(task, budget=BUDGET) for task in load_suite().mini[:jobs]]
    finished = []

    def make_agent(index, task, trial):
        return LevelAgent(ModelPolicy(sampler, "mixed"), mode=mode)

    stats = run_lockstep([(task, 0) for task in tasks], make_agent, slots, sampler, seed,
                         lambda index, result, agent: finished.append((index, result, agent)), progress=False)
    return sampler, stats, finished, tasks


def test_every_waiting_episode_is_answered_by_one_call_per_round():
    # Slow mode, one step per reply: every running episode waits for a reply at every step.
    sampler, stats, finished, tasks = run("Action: noop", "slow", slots=2)
    assert [size for size, _ in sampler.calls] == [2] * BUDGET + [1] * BUDGET  # the third job fills a freed slot
    assert [seed for _, seed in sampler.calls] == list(range(10, 10 + 2 * BUDGET))  # seed + round index
    assert sorted(index for index, _, _ in finished) == [0, 1, 2]
    assert [result.task_id for index, result, _ in sorted(finished, key=lambda f: f[0])] == [t.id for t in tasks]
    assert (stats.episodes, stats.env_steps, stats.generate_calls, stats.replies) == (3, 15, 10, 15)
    assert stats.generated_tokens == 2 * 15 and stats.steps_per_second > 0 and stats.generation_seconds > 0


def test_a_second_reply_within_a_step_is_asked_alone_with_the_episode_seed():
    # A skill that fails at once (no wood for a table) ends its call, so the agent asks again in the same step.
    sampler, stats, finished, _ = run("Skill: place table", "dynamic", slots=3)
    batched = [call for call in sampler.calls if call[0] > 1]
    alone = [call for call in sampler.calls if call[0] == 1]
    assert len(batched) == BUDGET and all(size == 3 for size, _ in batched)
    index, result, agent = finished[0]
    assert index == 0 and agent.calls == 3 * BUDGET  # each step: the batched reply, then two alone (MAX_CALLS_PER_STEP)
    assert [seed for _, seed in alone[:2]] == [(result.seed * SEED_STRIDE + call) * STREAMS for call in (1, 2)]
    assert (stats.generate_calls, stats.replies) == (len(sampler.calls), 3 * 3 * BUDGET)


def test_same_jobs_sampler_and_seed_give_the_same_episodes():
    first = run("Skill: collect wood", "dynamic", slots=2)
    again = run("Skill: collect wood", "dynamic", slots=2)
    assert first[0].calls == again[0].calls
    assert [r.actions for _, r, _ in first[2]] == [r.actions for _, r, _ in again[2]]


def test_slots_must_be_positive():
    with pytest.raises(ValueError, match="slots"):
        run_lockstep([], lambda task, trial: None, 0, ScriptedSampler(""), 0, lambda *finished: None)
