"""Behaviour cloning: segments from the labellers, a short run lowers the loss, a rerun resumes or refuses."""

from __future__ import annotations

import pytest
import torch

from crossagent.data.executor_examples import examples, motion_rows
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.executors.checkpoint import load_policy
from crossagent.executors.registry import LEARNED_LEVELS
from crossagent.train.curves import CURVE_PNG
from crossagent.train.executors import ExecutorTrainConfig, losses, train_executors, train_level
from tests.executors.conftest import SMALL, small_policy

TINY = ExecutorTrainConfig(epochs=2, batch_size=16, **SMALL)


@pytest.mark.parametrize("level", LEARNED_LEVELS)
def test_every_level_has_examples_with_a_done_step_per_segment(episodes, level):
    data = examples(episodes, level, 64)
    assert len(data) >= sum(len(steps) for steps in episodes)  # at least one example per step
    assert 0 < data.done.sum() < len(data)
    assert data.actions.max() < len(ACTION_NAMES)


def test_a_motion_run_is_one_segment_done_at_its_end(episodes):
    steps = episodes[0]
    rows = list(motion_rows(steps, 64))
    assert len(rows) == len(steps)
    # A step is done exactly where the next step starts another run (or the episode ends).
    for i, (_, action, done) in enumerate(rows[:-1]):
        if not done:
            assert rows[i + 1][1] == action
    assert rows[-1][2]


@pytest.mark.parametrize("level", LEARNED_LEVELS)
def test_a_short_training_run_lowers_the_loss(episodes, level, tmp_path):
    torch.manual_seed(0)
    data = examples(episodes, level, 64)
    before = sum(losses(small_policy(level), data)).item()
    train_level(level, episodes, [], 64, tmp_path / level, ExecutorTrainConfig(epochs=40, batch_size=32, learning_rate=3e-3, **SMALL),
                {}, progress=False)
    after = sum(losses(load_policy(tmp_path / level, level), data)).item()
    assert after < 0.7 * before
    assert (tmp_path / level / CURVE_PNG).exists()


def test_training_resumes_by_level_and_refuses_other_settings(recording, tmp_path):
    first = train_executors(recording, tmp_path, ["motion"], TINY, progress=False)
    assert [(r.level, r.skipped) for r in first] == [("motion", False)]
    again = train_executors(recording, tmp_path, ["motion", "skill"], TINY, progress=False)
    assert [(r.level, r.skipped) for r in again] == [("motion", True), ("skill", False)]
    with pytest.raises(ValueError, match="epochs: 2 -> 3"):
        train_executors(recording, tmp_path, ["motion"], ExecutorTrainConfig(epochs=3, batch_size=16, **SMALL),
                        progress=False)


def test_a_hindsight_approach_ends_with_the_step_onto_its_cell(episodes):
    from crossagent.data.executor_examples import approach_rows, next_index
    from crossagent.data.labelling import is_interaction
    from crossagent.envs.crafter_vocabulary import VOCABULARY
    from crossagent.executors.features import OFFSET_SCALE

    ends = 0
    for steps in episodes:
        for step, action, done in approach_rows(steps, next_index(steps, is_interaction)):
            dx, dy = (round(v * OFFSET_SCALE) for v in step.command[-2:].tolist())
            if done:
                ends += 1
                assert ACTION_NAMES[action] == "move_" + {v: k for k, v in VOCABULARY.directions.items()}[(dx, dy)]
    assert ends > 0
