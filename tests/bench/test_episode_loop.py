"""The episode loop: one sampler call per round for every waiting episode, slots refilled, errors
kept per episode, and episodes that do not depend on the slots."""

from dataclasses import replace

import pytest

from crossagent.agents.level_agent import LevelAgent
from crossagent.agents.model_policy import ModelPolicy, reply_seed
from crossagent.agents.random_agent import RandomAgent
from crossagent.bench.episode import Episode, make_env
from crossagent.bench.episode_loop import run_episodes
from crossagent.models.reply_request import Sample
from crossagent.tasks.suite import load_suite

BUDGET = 5


class ScriptedSampler:
    """Always the same reply; records every call's batch size and the requests' seeds."""

    def __init__(self, reply: str):
        self.reply = reply
        self.calls: list[list[int]] = []

    def sample(self, requests):
        self.calls.append([request.seed for request in requests])
        return [Sample(self.reply, (1, 2)) for _ in requests]


def tasks(count: int = 3):
    return [replace(task, budget=BUDGET) for task in load_suite().mini[:count]]


def run(reply: str, mode: str, slots: int, jobs: int = 3, seed: int = 10):
    sampler = ScriptedSampler(reply)
    finished = []

    def make_episode(index, task, trial):
        agent = LevelAgent(ModelPolicy("mixed", seed=seed), mode=mode)
        return Episode(make_env(agent), agent, task, trial)

    stats = run_episodes([(task, 0) for task in tasks(jobs)], make_episode, finished.append, slots, sampler)
    return sampler, stats, finished


def test_every_waiting_episode_is_answered_by_one_call_per_round():
    # Slow mode, one step per reply: every running episode waits for a reply at every step.
    sampler, stats, finished = run("Action: noop", "slow", slots=2)
    assert [len(call) for call in sampler.calls] == [2] * BUDGET + [1] * BUDGET  # the third job fills a freed slot
    assert sorted(done.index for done in finished) == [0, 1, 2]
    assert [done.result.task_id for done in sorted(finished, key=lambda d: d.index)] == [t.id for t in tasks()]
    assert all(done.error is None for done in finished)
    assert (stats.episodes, stats.env_steps, stats.generate_calls, stats.replies) == (3, 15, 10, 15)
    assert stats.generated_tokens == 2 * 15 and stats.steps_per_second > 0 and stats.generation_seconds > 0


def test_second_replies_within_a_step_are_batched_too():
    # A skill that fails at once (no wood for a table) ends its call, so every agent asks again in the same step.
    sampler, stats, finished = run("Skill: place table", "dynamic", slots=3)
    assert [len(call) for call in sampler.calls] == [3] * (3 * BUDGET)  # MAX_CALLS_PER_STEP rounds per step
    assert all(done.episode.agent.calls == 3 * BUDGET for done in finished)
    assert (stats.generate_calls, stats.replies) == (3 * BUDGET, 3 * 3 * BUDGET)


def test_each_reply_is_seeded_by_its_episode_and_call_whatever_the_slots():
    alone, _, finished = run("Action: noop", "slow", slots=1)
    together, _, _ = run("Action: noop", "slow", slots=3)
    first = sorted(finished, key=lambda d: d.index)[0].result
    assert [call[0] for call in alone.calls[:BUDGET]] == [reply_seed(10, first.seed, call, 0) for call in range(BUDGET)]
    assert sorted(seed for call in alone.calls for seed in call) == sorted(seed for call in together.calls
                                                                          for seed in call)
    other_run, _, _ = run("Action: noop", "slow", slots=1, seed=11)
    assert other_run.calls != alone.calls


def test_an_episode_that_raises_fails_alone():
    class Broken(RandomAgent):
        def act(self, observation, state):
            raise RuntimeError("broken agent")

    finished = []

    def make_episode(index, task, trial):
        agent = Broken() if index == 1 else RandomAgent()
        return Episode(make_env(agent), agent, task, trial)

    stats = run_episodes([(task, 0) for task in tasks()], make_episode, finished.append, slots=3)
    errors = {done.index: done.error for done in finished}
    assert errors[0] is None and errors[2] is None and "broken agent" in errors[1]
    broken = next(done.result for done in finished if done.index == 1)
    assert not broken.success and broken.steps == 0
    assert stats.episodes == 3 and stats.env_steps == 2 * BUDGET


def test_a_reply_request_needs_a_sampler():
    agent = LevelAgent(ModelPolicy("mixed"), mode="slow")
    with pytest.raises(RuntimeError, match="no sampler"):
        run_episodes([(tasks(1)[0], 0)], lambda *_: Episode(make_env(agent), agent, tasks(1)[0], 0), lambda done: None)


def test_slots_must_be_positive():
    with pytest.raises(ValueError, match="slots"):
        run_episodes([], lambda *_: None, lambda done: None, slots=0)
