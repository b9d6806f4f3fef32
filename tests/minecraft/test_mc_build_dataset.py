"""`crossagent mc build-dataset` on a synthetic VPT clip written by the test (tests/minecraft/synthetic_vpt.py)."""

import json

import numpy as np
import pytest
from datasets import load_from_disk

from crossagent.cli import main
from crossagent.data import vpt_dataset
from crossagent.data.vpt_dataset import VptDatasetSettings, build_vpt_dataset, find_recordings
from tests.minecraft.synthetic_vpt import HEIGHT, N_FRAMES, WIDTH, grey_level, write_clip

KEPT_FRAMES = [1, 2, 4, 6, 7, 8, 9, 11]  # see synthetic_vpt.py


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "vpt")


def build(paths, out, **settings):
    return build_vpt_dataset(find_recordings(paths), out, VptDatasetSettings(**settings))


def reply_of(example) -> str:
    return json.loads(example["messages"])[-1]["content"][0]["text"]


def test_examples_and_rejections_per_rule(clip, tmp_path):
    dataset, report = build([clip], tmp_path / "out", history=2)
    # Two formats per kept frame; no-ops 0, 5, 10 and the half-pixel frame 3 rejected in each.
    assert report.kept == 2 * len(KEPT_FRAMES) == len(dataset)
    assert report.rejected == {"action_lines": 0, "upper_lines": 0, "unparseable": 0, "action_mismatch": 2, "noop": 6}
    assert sorted(set(dataset["frame"])) == KEPT_FRAMES
    stored = json.loads((tmp_path / "out" / "report.json").read_text())
    assert stored["kept"] == 16 and stored["recordings"]["clip"]["rejected"]["noop"] == 6
    assert len(load_from_disk(str(tmp_path / "out" / "dataset"))) == 16


def test_replies_are_the_openha_bytes(clip, tmp_path):
    dataset, _ = build([clip], tmp_path / "out", history=0)
    replies = {(e["format"], e["frame"]): reply_of(e) for e in dataset}
    assert replies[("raw", 4)] == "Action: press(space, w) "  # the recording's key order
    assert replies[("motion_coa", 4)] == "Motion: move forward, jump\nAction: press(space, w) "
    assert replies[("motion_coa", 2)] == "Motion: move forward, sprint, turn right\nAction: move(10, 0) and press(w, left.control) "
    assert replies[("motion_coa", 6)] == "Motion: open inventory\nAction: press(e) "
    assert replies[("motion_coa", 7)] == "Motion: cursor move right and down\nAction: move(20, 10) "
    assert replies[("motion_coa", 8)] == "Motion: operate gui\nAction: click(left) "
    assert replies[("motion_coa", 9)] == "Motion: close inventory\nAction: press(e) "
    assert replies[("raw", 11)] == "Action: move(0, -4) and click(left) "


def test_crossagent_profile_writes_the_canonical_form(clip, tmp_path):
    dataset, _ = build([clip], tmp_path / "out", profile="crossagent", formats=("raw",), history=0)
    assert reply_of(dataset[dataset["frame"].index(4)]) == "Action: move(0, 0) and press(w, space)"
    assert set(dataset["profile"]) == {"crossagent"}


def test_images_are_the_video_frames_with_history(clip, tmp_path):
    dataset, _ = build([clip], tmp_path / "out", formats=("motion_coa",), history=2)
    example = dataset[dataset["frame"].index(4)]
    images = [np.asarray(image) for image in example["images"]]
    assert [image.shape for image in images] == [(HEIGHT, WIDTH, 3)] * 3
    # History shows the two frames before, rejected ones included (frame 3), then the current frame.
    assert [int(round(image.mean())) for image in images] == pytest.approx([grey_level(2), grey_level(3), grey_level(4)], abs=2)
    messages = json.loads(example["messages"])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert messages[1]["content"] == [{"type": "text", "text": "Task: Play Minecraft."}, {"type": "image"}]
    assert messages[2]["content"][0]["text"].startswith("Motion: move forward, sprint, turn right\nAction: ")


def test_image_width_resizes(clip, tmp_path):
    dataset, _ = build([clip], tmp_path / "out", formats=("raw",), history=0, image_width=32)
    assert np.asarray(dataset[0]["images"][0]).shape == (24, 32, 3)


def test_without_video_examples_are_text_only(tmp_path):
    jsonl = write_clip(tmp_path / "vpt", with_video=False)
    dataset, report = build([jsonl], tmp_path / "out")
    assert report.kept == 16 and all(images == [] for images in dataset["images"])
    assert [m["role"] for m in json.loads(dataset[0]["messages"])] == ["system", "user", "assistant"]


def test_video_with_other_frame_count_is_an_error(tmp_path):
    jsonl = write_clip(tmp_path / "vpt", video_frames=N_FRAMES - 2)
    with pytest.raises(ValueError, match=r"clip.mp4 has 10 frames, clip.jsonl has 12"):
        build([jsonl], tmp_path / "out")
    longer = write_clip(tmp_path / "long", video_frames=N_FRAMES + 1)
    with pytest.raises(ValueError, match="has more frames"):
        build([longer], tmp_path / "out2")


def test_keep_noop_keeps_them(clip, tmp_path):
    _, report = build([clip], tmp_path / "out", keep_noop=1.0, history=0)
    assert report.rejected["noop"] == 0 and report.kept == 22


def test_resume_skips_finished_recordings(tmp_path, monkeypatch):
    write_clip(tmp_path / "vpt", "a"), write_clip(tmp_path / "vpt", "b")
    built = []
    real = vpt_dataset.recording_examples

    def interrupted(path, settings):
        if path.stem == "b":
            raise KeyboardInterrupt
        built.append(path.stem)
        return real(path, settings)

    monkeypatch.setattr(vpt_dataset, "recording_examples", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build([tmp_path / "vpt"], tmp_path / "out", history=0)
    assert (tmp_path / "out" / "recordings" / "a" / "report.json").exists()
    assert not (tmp_path / "out" / "dataset").exists()

    def counted(path, settings):
        built.append(path.stem)
        return real(path, settings)

    monkeypatch.setattr(vpt_dataset, "recording_examples", counted)
    dataset, report = build([tmp_path / "vpt"], tmp_path / "out", history=0)
    assert built == ["a", "b"]  # a once, before the interruption; b after it
    assert report.kept == 32 and sorted(set(dataset["recording"])) == ["a", "b"]
    with pytest.raises(ValueError, match=r"other settings \(history\)"):
        build([tmp_path / "vpt"], tmp_path / "out", history=1)


def test_cli_log_has_one_line_per_recording(clip, tmp_path, capsys):
    write_clip(clip.parent, "second")
    assert main(["mc", "build-dataset", str(clip.parent), "--out", str(tmp_path / "out"), "--history", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "clip: 16 examples, rejected action_lines 0, upper_lines 0, unparseable 0, action_mismatch 2, noop 6",
        "second: 16 examples, rejected action_lines 0, upper_lines 0, unparseable 0, action_mismatch 2, noop 6",
    ]
    assert "\r" not in captured.err
    assert "32 examples from 2 recordings" in captured.out
    assert "[assistant] 'Action: press(w) '" in captured.out


def test_cli_errors(tmp_path, capsys):
    assert main(["mc", "build-dataset", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 2
    assert "neither a folder nor a .jsonl" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"mouse": {"dx": Infinity}}\n')
    assert main(["mc", "build-dataset", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert f"{bad}:1: Infinity is not a number" in capsys.readouterr().err
    assert main(["mc", "build-dataset", str(bad), "--out", str(tmp_path / "o2"), "--formats", "skill"]) == 2
    assert "unknown output format" in capsys.readouterr().err


def test_the_project_sft_trains_on_the_dataset(clip, tmp_path):
    """The examples fit train/sft.py as they are: its collator labels exactly the final reply, and a run takes steps."""
    import torch

    from crossagent.models.loading import load_model
    from crossagent.models.tiny_vlm import create_tiny_model
    from crossagent.train.sft import IGNORE_INDEX, FinalReplyCollator, SFTSettings, run_sft

    torch.set_num_threads(1)
    dataset, _ = build([clip], tmp_path / "out", history=1)
    tiny = str(create_tiny_model(tmp_path / "tiny"))
    _, processor = load_model(tiny)
    example = dataset[dataset["frame"].index(4) + 1]  # motion_coa of frame 4: its own reply and frame 3's
    batch = FinalReplyCollator(processor, max_length=4096)([example])
    labelled = processor.tokenizer.decode(batch["labels"][0][batch["labels"][0] != IGNORE_INDEX].tolist())
    assert example["format"] == "motion_coa"
    # frame 3's reply ("Motion: turn right ...") is in the history, an input: only frame 4's reply is learned.
    assert labelled.replace(" ", "") == "Motion: move forward, jump\nAction: press(space, w) <|im_end|>".replace(" ", "")
    result = run_sft(SFTSettings(model=tiny, dataset=str(tmp_path / "out" / "dataset"), output_dir=str(tmp_path / "run"),
                                 max_steps=2, batch_size=4, save_steps=100, logging_steps=1, warmup_steps=0,
                                 progress=False))
    assert result.steps == 2 and result.final_loss is not None and np.isfinite(result.final_loss)
