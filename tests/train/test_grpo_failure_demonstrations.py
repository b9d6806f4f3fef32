"""Failure demonstrations: the expert's solutions of the groups that solved nothing join a pool whose SFT loss joins
every optimizer step."""

from __future__ import annotations

import csv
import json

import pytest
from datasets import load_from_disk

from crossagent.actions.chain import parse_reply
from crossagent.bench.episode import EpisodeResult
from crossagent.tasks.splits import train_tasks
from crossagent.tasks.suite import load_suite
from crossagent.train.failure_demonstrations import POOL_DIR, expert_examples, failed_groups
from crossagent.train.grpo import GRPOConfig, train
from crossagent.train.grpo_log import LOG_CSV
from crossagent.train.rollouts import EpisodeRollout, EpisodeSpec, RolloutSettings

from .conftest import tiny_config

TASKS = {task.category: task for task in train_tasks(load_suite(None), 1)}  # the expert: 8, 89 and 8 steps
SETTINGS = RolloutSettings(max_episode_steps=12, history_length=0, use_image=False, use_text=True,
                           prompt_style="compact")


def rollout(group: int, success: bool) -> EpisodeRollout:
    task = TASKS["embodied"]
    result = EpisodeResult(task.id, task.category, group, 0, success, 5, 0.0, 0.0, False)
    return EpisodeRollout(EpisodeSpec(task, group, group), result, [], float(success))


def test_a_group_failed_when_none_of_its_episodes_succeeded():
    episodes = [rollout(0, False), rollout(0, False), rollout(1, False), rollout(1, True), rollout(2, False)]
    assert [spec.group for spec in failed_groups(episodes)] == [0, 2]


def test_the_expert_solutions_are_labelled_as_the_policy_is_prompted():
    specs = [EpisodeSpec(TASKS["embodied"], 0, 0), EpisodeSpec(TASKS["craft"], 1, 1)]
    examples = expert_examples(specs, SETTINGS, None)
    # The craft task takes the expert 89 steps, past the rollouts' cap of 12: only the embodied solution (8 steps,
    # one example per kept step) is labelled.
    assert 0 < len(examples) <= 8
    assert set(examples["task_id"]) == {TASKS["embodied"].id} and set(examples["format"]) == {"mixed"}
    for row in examples:
        messages = json.loads(row["messages"])
        assert row["images"] == []  # the policy reads the text view only
        assert parse_reply(messages[-1]["content"][0]["text"]).error is None
    assert len(expert_examples([], SETTINGS, None)) == 0


def pool_part(out, iteration: int) -> int:
    """The examples an iteration added to the pool (it writes none when it has none)."""
    folder = out / POOL_DIR / f"iteration_{iteration:04d}"
    return len(load_from_disk(str(folder))) if folder.exists() else 0


def log_rows(out) -> list[dict]:
    with (out / LOG_CSV).open() as file:
        return list(csv.DictReader(file))


def test_the_pool_grows_from_failed_groups_is_trained_on_and_is_restored_on_resuming(tiny_path, tmp_path):
    fields = dict(max_episode_steps=12, history_length=0, use_image=False, use_text=True, prompt_style="compact",
                  failure_demonstrations_per_step=4, learning_rate=2e-3,
                  gradient_accumulation_steps=6)  # at most 4 episodes x 12 turns, 8 per micro-batch: one step
    out = tmp_path / "run"
    train(tiny_config(tiny_path, out, updates=2, **fields))
    rows = log_rows(out)
    saved = [pool_part(out, iteration) for iteration in (1, 2)]
    # The untrained tiny model solves nothing, so every group's trial is handed to the expert.
    assert sum(saved) > 0
    assert [int(row["failure_demonstration_pool"]) for row in rows] == [saved[0], saved[0] + saved[1]]
    # One optimizer step per iteration, 4 examples each once the pool has any.
    assert [int(row["failure_demonstrations"]) for row in rows] == [4 if pool else 0 for pool in
                                                                    (saved[0], sum(saved))]
    assert all(row["demonstrations"] == "0" for row in rows)  # the cold start's data set is another source

    # Resuming from iteration 2's checkpoint reloads the pool of iterations 1 and 2.
    train(tiny_config(tiny_path, out, updates=3, **fields))
    third = log_rows(out)[2]
    saved.append(pool_part(out, 3))
    assert int(third["failure_demonstration_pool"]) == sum(saved)
    assert int(third["failure_demonstrations"]) == 4 and float(third["failure_demonstration_loss"]) > 0
    # The tiny model's groups of the task the expert solves within 12 steps failed in every iteration, but a group
    # of the crafting task (89 steps) gives none: the pool grows by at most 8 examples per such group.
    assert all(0 <= part <= 8 * 2 for part in saved)


def test_failure_demonstrations_per_step_cannot_be_negative():
    with pytest.raises(ValueError, match="failure_demonstrations_per_step -1"):
        GRPOConfig(model="m", output_dir="o", failure_demonstrations_per_step=-1)
