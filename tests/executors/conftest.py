"""Shared fixtures: a small expert recording and untrained policies, built once per session."""

from __future__ import annotations

import pytest
import torch

from crossagent.data.recording import episodes_of, load_trajectories, record
from crossagent.executors.policy import ExecutorPolicy, PolicyConfig
from crossagent.tasks.suite import load_suite

torch.set_num_threads(1)  # small networks gain nothing from threads on a small shared CPU
# Short expert episodes with runs of moves, interactions and several achievements.
TASKS = ("embodied.collect_coal.far.w16", "craft.make_stone_pickaxe.kit.w6")
SMALL = dict(hidden=32, conv_channels=8)


@pytest.fixture(scope="session")
def recording(tmp_path_factory):
    out = tmp_path_factory.mktemp("expert")
    suite = load_suite()
    record("expert", tuple(suite.task(task_id) for task_id in TASKS), 2, out, progress=False)
    return out


@pytest.fixture(scope="session")
def episodes(recording):
    return episodes_of(load_trajectories(recording))


def small_policy(level: str, seed: int = 0) -> ExecutorPolicy:
    torch.manual_seed(seed)
    return ExecutorPolicy(PolicyConfig.for_level(level, **SMALL)).eval()
