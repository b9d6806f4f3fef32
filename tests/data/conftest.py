"""Shared fixtures: hand-built step records, and one small real recording per test session."""

from __future__ import annotations

import numpy as np
import pytest

from crossagent.data.recording import StepRecord, record
from crossagent.tasks.suite import load_suite

# Two short, easy tasks of the packaged suite: one place_table step, three steps to chop a tree.
EASY_TASKS = ("craft.place_table.kit.w45", "embodied.collect_wood.near.w0")


def make_step(step: int, action: str, position: tuple[int, int], arrived: tuple[int, int] | None = None,
              trial: int = 0, **annotations) -> StepRecord:
    """A step of episode ("t", trial); the image is filled with the step index, so tests can tell images apart."""
    image = np.full((64, 64, 3), step, dtype=np.uint8)
    return StepRecord(task_id="t", trial=trial, step=step, action=action, position=position,
                      arrived=arrived if arrived is not None else position, image=image, category="embodied",
                      instruction="Do it.", **annotations)


@pytest.fixture(scope="session")
def easy_tasks():
    suite = load_suite()
    return tuple(suite.task(task_id) for task_id in EASY_TASKS)


@pytest.fixture(scope="session")
def recording(tmp_path_factory, easy_tasks):
    """A folder with the expert's two easy episodes, one shard each."""
    out = tmp_path_factory.mktemp("recording")
    run = record("expert", easy_tasks, 1, out, shard_episodes=1, progress=False)
    return out, run
