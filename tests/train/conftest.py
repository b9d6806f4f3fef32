"""The tiny model and a tiny GRPO config, shared by the GRPO tests."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: nothing may come from a hub

import pytest  # noqa: E402
import torch  # noqa: E402

from crossagent.models.tiny_vlm import create_tiny_model  # noqa: E402
from crossagent.train.grpo import GRPOConfig  # noqa: E402

torch.set_num_threads(1)  # the tiny model gains nothing from threads on a small shared CPU


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory):
    return create_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def tiny_config(tiny_path, out, updates: int, **fields) -> GRPOConfig:
    # At most 4 episodes x 6 turns = 24 turns, 8 per micro-batch, 3 per step: one optimizer step per iteration.
    return GRPOConfig(**{**dict(model=str(tiny_path), output_dir=str(out), tasks_per_category=1, tasks_per_batch=2,
                                group_size=2, max_episode_steps=6, max_new_tokens=4, updates=updates,
                                checkpoint_every=1, learning_rate=1e-4, minibatch_size=8,
                                gradient_accumulation_steps=3), **fields})
