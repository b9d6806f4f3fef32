"""One tiny model for the whole session, built in a temporary directory; nothing comes from a hub."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: any hub access would fail

import numpy as np
import pytest
import torch

from crossagent.envs.crafter_env import Observation
from crossagent.envs.start_state import StartState
from crossagent.models.loading import load_model
from crossagent.models.tiny_vlm import TinyVLMConfig, create_tiny_model
from crossagent.tasks.predicates import Gain
from crossagent.tasks.task import Task

# One thread: on a small shared CPU torch's thread pool oversubscribes the cores, and the tiny model's
# matrices are too small to gain from threads (measured: ~50x slower with 2 threads on a busy 2-core box).
torch.set_num_threads(1)

# Wider random weights than Qwen2-VL's 0.02, so the untrained model's replies depend on its input.
TEST_CONFIG = TinyVLMConfig(initializer_range=0.1)


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory):
    return create_tiny_model(tmp_path_factory.mktemp("tiny-vlm") / "model", config=TEST_CONFIG)


@pytest.fixture(scope="session")
def tiny(tiny_path):
    """(model, processor) loaded from the saved checkpoint."""
    return load_model(tiny_path)


def observation(seed: int, text: str | None = "view: ...") -> Observation:
    return Observation(np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8), text)


def task(instruction: str = "Collect a piece of wood.") -> Task:
    return Task(id="t", category="embodied", instruction=instruction, paraphrases=("a", "b"), world_seed=0,
                start=StartState(), budget=10, success=Gain("wood", 1))
