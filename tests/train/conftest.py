"""The tiny model and a tiny GRPO config, shared by the GRPO tests."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: nothing may come from a hub

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402

from crossagent.agents.model_policy import SampledTurn  # noqa: E402
from crossagent.models.constrained_decoding import unpack_allowed  # noqa: E402
from crossagent.models.prompts import build_messages  # noqa: E402
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


def demonstration(index: int) -> dict:
    """An SFT example as `crossagent data label` writes it: a prompt with an image, and the reply to learn."""
    image = np.random.default_rng(index).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    messages, images = build_messages("mixed", "Collect wood.", [], image, None, prompt_style="full")
    messages.append({"role": "assistant", "content": [{"type": "text", "text": "Skill: collect wood"}]})
    return {"messages": json.dumps(messages), "images": images}


def save_demonstrations(folder: Path, count: int = 6) -> Path:
    Dataset.from_list([demonstration(i) for i in range(count)]).save_to_disk(str(folder))
    return folder


def plain_logprobs(model, processor, turn: SampledTurn, masks: np.ndarray | None, temperature: float) -> torch.Tensor:
    """One turn alone, no padding, no cache: the full sequence's logits, held to the grammar (if masks)."""
    text = processor.apply_chat_template(turn.messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=turn.images, return_tensors="pt")
    prompt = inputs["input_ids"].shape[1]
    reply = torch.tensor([turn.token_ids])
    inputs["input_ids"] = torch.cat([inputs["input_ids"], reply], dim=1)
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(reply)], dim=1)
    logits = model(**inputs).logits[0, prompt - 1:-1] / temperature
    if masks is not None:
        allowed = torch.from_numpy(unpack_allowed(masks, logits.shape[-1]))
        logits = logits.masked_fill(~allowed, torch.finfo(logits.dtype).min)
    return logits.log_softmax(-1).gather(-1, reply[0].unsqueeze(-1)).squeeze(-1)
