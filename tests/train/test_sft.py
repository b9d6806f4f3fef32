"""Cold-start SFT: final-reply labels, the efficient loss, both prompt styles, checkpoints, curves, and resume."""

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset

from crossagent.models.prompts import Turn, build_messages
from crossagent.models.tiny_vlm import create_tiny_model
from crossagent.models.loading import load_model
from crossagent.train.sft import (IGNORE_INDEX, RESULT_FILE, FinalReplyCollator, SFTSettings, bf16_is_fast, reply_loss,
                                  run_sft)

REPLIES = ("Action: move_left", "Skill: collect wood")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    return str(create_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


def example(index: int, history: bool = False, prompt_style: str = "full", text: str | None = None,
            use_image: bool = True) -> dict:
    rng = np.random.default_rng(index)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) if use_image else None
    turns = [Turn(image, None, "Motion: wait 2")] if history else []
    messages, images = build_messages("mixed", "Collect wood.", turns, image, text, prompt_style=prompt_style)
    messages.append({"role": "assistant", "content": [{"type": "text", "text": REPLIES[index % 2]}]})
    return {"messages": json.dumps(messages), "images": images}


def test_labels_cover_exactly_the_final_reply(tiny):
    """The history's reply is an input (the model's own earlier reply at evaluation), not a target."""
    _, processor = load_model(tiny)
    collator = FinalReplyCollator(processor, max_length=4096)
    batch = collator([example(0, history=True), example(1)])
    tokenizer = processor.tokenizer
    for row in range(2):
        labelled = batch["labels"][row][batch["labels"][row] != IGNORE_INDEX].tolist()
        assert tokenizer.decode(labelled) == REPLIES[row % 2] + "<|im_end|>"
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    assert batch["attention_mask"][:, 0].all()  # padded on the right


@pytest.mark.parametrize("prompt_style, use_image", [("full", True), ("compact", True), ("compact", False)])
def test_reply_loss_equals_the_models_own_loss_and_gradients(tiny, prompt_style, use_image):
    """Scoring only labelled positions, without the padding mask, changes neither the loss nor its gradients."""
    model, processor = load_model(tiny)
    model.train()
    text = "view:\n.........\nfacing: grass"
    examples = [example(i, history=i % 2 == 0, prompt_style=prompt_style, text=text if i % 3 else None,
                        use_image=use_image) for i in range(5)]
    examples[0]["messages"] = examples[0]["messages"].replace("Collect wood.", "Collect wood, then a sapling, then a stone.")
    batch = FinalReplyCollator(processor, max_length=4096)(examples)
    assert (batch["attention_mask"] == 0).any()  # some rows are padded
    plain = model(**batch).loss
    plain_grads = torch.autograd.grad(plain, list(model.parameters()), allow_unused=True)
    efficient, _, _ = reply_loss(model, batch)
    efficient_grads = torch.autograd.grad(efficient, list(model.parameters()), allow_unused=True)
    assert efficient.item() == pytest.approx(plain.item(), rel=1e-5)
    for a, b in zip(plain_grads, efficient_grads):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    count = (batch["labels"][:, 1:] != IGNORE_INDEX).sum()
    summed, _, _ = reply_loss(model, batch, num_items_in_batch=2 * count)  # the Trainer's count over 2 micro-batches
    assert summed.item() == pytest.approx(plain.item() / 2, rel=1e-5)


@pytest.mark.parametrize("prompt_style", ["compact", "full"])
def test_both_prompt_styles_train(tiny, tmp_path, prompt_style):
    Dataset.from_list([example(i, history=i % 2 == 1, prompt_style=prompt_style, text="view: ...")
                       for i in range(8)]).save_to_disk(str(tmp_path / "data"))
    result = run_sft(SFTSettings(model=tiny, dataset=str(tmp_path / "data"), output_dir=str(tmp_path / "run"),
                                 max_steps=3, batch_size=4, save_steps=100, logging_steps=1, warmup_steps=0,
                                 progress=False))
    assert result.steps == 3 and np.isfinite(result.final_loss)


def test_an_example_over_max_length_is_an_error_not_a_silent_cut(tiny):
    _, processor = load_model(tiny)
    with pytest.raises(ValueError, match="over max_length 50"):
        FinalReplyCollator(processor, max_length=50)([example(0)])


@pytest.fixture(scope="module")
def sft_run(tiny, tmp_path_factory):
    """16 steps, a checkpoint every 6 (and at the end), a log row every step."""
    root = tmp_path_factory.mktemp("sft")
    Dataset.from_list([example(i) for i in range(32)]).save_to_disk(str(root / "data"))
    settings = SFTSettings(model=tiny, dataset=str(root / "data"), output_dir=str(root / "run"),
                           max_steps=16, batch_size=8, save_steps=6, logging_steps=1, learning_rate=2e-3,
                           warmup_steps=0, progress=False)
    return settings, run_sft(settings)


def loss_rows(run_dir) -> list[dict]:
    with (run_dir / "loss_curve.csv").open() as file:
        return list(csv.DictReader(file))


def test_sft_learns(sft_run, tiny):
    settings, result = sft_run
    run_dir = Path(settings.output_dir)
    assert result.steps == 16 and result.tokens > 0 and result.tokens_per_second > 0
    assert [int(row["step"]) for row in loss_rows(run_dir)] == list(range(1, 17))
    assert (run_dir / "loss_curve.png").stat().st_size > 0
    assert (run_dir / "checkpoint-12").is_dir() and (run_dir / "checkpoint-16").is_dir()
    initial, processor = load_model(tiny)
    trained, _ = load_model(result.output_dir)
    assert not any(torch.equal(a, b) for a, b in zip(initial.parameters(), trained.parameters()))
    batch = FinalReplyCollator(processor, max_length=4096)([example(i) for i in range(8)])
    with torch.no_grad():
        before, after = initial(**batch).loss, trained(**batch).loss
    assert after < 0.5 * before  # two replies to learn: the trained model predicts them


def test_sft_resumed_after_a_kill_logs_each_step_once_and_counts_every_token(sft_run, tmp_path):
    settings, uninterrupted = sft_run
    run_dir = tmp_path / "run"
    shutil.copytree(settings.output_dir, run_dir)
    # Killed at step 16 before its checkpoint was written: rows 13-16 are logged, checkpoint-12 is the newest.
    for path in (run_dir / "checkpoint-16", run_dir / "final", run_dir / RESULT_FILE):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    resumed = run_sft(replace(settings, output_dir=str(run_dir)))
    assert resumed.steps == 16
    rows = loss_rows(run_dir)
    assert [int(row["step"]) for row in rows] == list(range(1, 17))  # 13-16 once, not twice
    expected = loss_rows(Path(settings.output_dir))
    assert [float(row["loss"]) for row in rows] == pytest.approx([float(row["loss"]) for row in expected], rel=1e-4)
    assert resumed.tokens == uninterrupted.tokens  # 12 steps from the checkpoint's count + the 4 run again

    again = run_sft(replace(settings, output_dir=str(run_dir), progress=True))  # progress is not a training setting
    assert again == resumed and not (run_dir / "checkpoint-17").exists()  # a finished run is not trained again


def test_sft_trains_on_past_a_finished_run_when_max_steps_grows(sft_run, tmp_path):
    settings, _ = sft_run
    run_dir = tmp_path / "run"
    shutil.copytree(settings.output_dir, run_dir)
    longer = run_sft(replace(settings, output_dir=str(run_dir), max_steps=18))
    assert longer.steps == 18
    assert [int(row["step"]) for row in loss_rows(run_dir)] == list(range(1, 19))


@pytest.mark.parametrize("native", [True, False])
def test_the_demo_and_compare_train_in_bf16_only_where_this_cpu_runs_it_natively(monkeypatch, native):
    """Emulated bf16 (no AVX-512) ran SFT about 25x slower than float32: the default follows oneDNN's check."""
    from crossagent.comparison import ComparisonSettings
    from crossagent.demo import DemoSettings

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    assert bf16_is_fast() is native
    assert DemoSettings().bf16 is native and ComparisonSettings().bf16 is native
