"""Cold-start SFT: assistant-only labels, checkpoints, curves, and resume."""

import csv
import json

import numpy as np
import pytest
import torch
from datasets import Dataset

from crossagent.models.prompts import Turn, build_messages
from crossagent.models.tiny_vlm import create_tiny_model
from crossagent.models.loading import load_model
from crossagent.train.sft import IGNORE_INDEX, AssistantOnlyCollator, SFTSettings, run_sft

REPLIES = ("Action: move_left", "Skill: collect wood")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    return str(create_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def example(index: int, history: bool = False) -> dict:
    rng = np.random.default_rng(index)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    turns = [Turn(image, None, "Motion: wait 2")] if history else []
    messages, images = build_messages("mixed", "Collect wood.", turns, image)
    messages.append({"role": "assistant", "content": [{"type": "text", "text": REPLIES[index % 2]}]})
    return {"messages": json.dumps(messages), "images": images}


def test_labels_cover_exactly_the_assistant_replies(tiny):
    _, processor = load_model(tiny)
    collator = AssistantOnlyCollator(processor, max_length=4096)
    batch = collator([example(0, history=True), example(1)])
    tokenizer = processor.tokenizer
    for row in range(2):
        labelled = batch["labels"][row][batch["labels"][row] != IGNORE_INDEX].tolist()
        text = tokenizer.decode(labelled)
        expected = ("Motion: wait 2<|im_end|>" if row == 0 else "") + REPLIES[row % 2] + "<|im_end|>"
        assert text.replace("\n", "") == expected
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_an_example_over_max_length_is_an_error_not_a_silent_cut(tiny):
    _, processor = load_model(tiny)
    with pytest.raises(ValueError, match="over max_length 50"):
        AssistantOnlyCollator(processor, max_length=50)([example(0)])


def test_sft_learns_checkpoints_and_resumes(tiny, tmp_path):
    Dataset.from_list([example(i) for i in range(32)]).save_to_disk(str(tmp_path / "data"))
    settings = SFTSettings(model=tiny, dataset=str(tmp_path / "data"), output_dir=str(tmp_path / "run"),
                           max_steps=12, batch_size=8, save_steps=6, logging_steps=2, learning_rate=2e-3,
                           warmup_steps=0, progress=False)
    first = run_sft(settings)
    assert first.steps == 12 and first.tokens > 0 and first.tokens_per_second > 0
    rows = list(csv.DictReader((tmp_path / "run" / "loss_curve.csv").open()))
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert (tmp_path / "run" / "loss_curve.png").stat().st_size > 0
    assert (tmp_path / "run" / "checkpoint-12").is_dir()
    settings.max_steps = 16
    resumed = run_sft(settings)
    assert resumed.steps == 16
    rows = list(csv.DictReader((tmp_path / "run" / "loss_curve.csv").open()))
    steps = [int(row["step"]) for row in rows]
    assert steps == sorted(steps) and steps[-1] == 16 and 14 in steps  # continued after 12, not from 0
    losses = {int(row["step"]): float(row["loss"]) for row in rows}
    # The resumed run starts from the trained weights, not from the initial ones.
    assert losses[14] < 0.8 * losses[2]
    model, _ = load_model(resumed.output_dir)
    assert sum(p.numel() for p in model.parameters()) > 0
    settings.progress = True  # not a training setting: the finished run is still the same run
    again = run_sft(settings)
    assert again == resumed and not (tmp_path / "run" / "checkpoint-17").exists()  # nothing trained again
