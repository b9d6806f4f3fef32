"""Recording: resumable shards, the dataset read back, and the `crossagent data` commands."""

import argparse
import json
import shutil

import numpy as np
import pytest

from crossagent.agents.registry import make_agent
from crossagent.data import cli
from crossagent.data.builders import REPORT, BuildConfig, label
from crossagent.data.recording import (episodes_of, load_trajectories, read_manifest, record,
                                       record_episode, recording_env)
from crossagent.envs.text_view import TEXT_VIEW_VERSION


def test_a_rerun_records_nothing_new(recording, easy_tasks):
    out, first = recording
    assert (first.planned, first.recorded, first.kept) == (2, 2, 2)
    again = record("expert", easy_tasks, 1, out, shard_episodes=1, progress=False)
    assert (again.skipped, again.recorded, again.steps) == (2, 0, 0)
    manifest = read_manifest(out)
    assert len(manifest["shards"]) == 2 and len(manifest["episodes"]) == 2
    assert len(load_trajectories(out)) == sum(e["steps"] for e in manifest["episodes"]) == first.steps


def test_other_settings_in_the_same_folder_are_refused(recording, easy_tasks):
    out, _ = recording
    with pytest.raises(ValueError, match="image_size 64"):
        record("expert", easy_tasks, 1, out, image_size=32, progress=False)


def test_a_recording_of_an_older_format_is_refused_by_name(recording, easy_tasks, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(recording[0], old)
    manifest = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**manifest, "format": 1}))
    with pytest.raises(ValueError, match="format 1.*record it again"):
        record("expert", easy_tasks, 1, old, progress=False)
    with pytest.raises(ValueError, match="format 1"):
        read_manifest(old)


def test_a_recording_of_older_text_views_is_refused(recording, easy_tasks, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(recording[0], old)
    manifest = json.loads((old / "manifest.json").read_text())
    assert manifest["text_view"] == TEXT_VIEW_VERSION
    (old / "manifest.json").write_text(json.dumps({**manifest, "text_view": TEXT_VIEW_VERSION - 1}))
    with pytest.raises(ValueError, match=f"text_view {TEXT_VIEW_VERSION - 1} \\(asked {TEXT_VIEW_VERSION}\\)"):
        record("expert", easy_tasks, 1, old, progress=False)


def test_steps_read_back_equal_the_recorded_ones(recording, easy_tasks):
    out, _ = recording
    stored = {steps[0].key: steps for steps in episodes_of(load_trajectories(out), decode_images=True)}
    expert = make_agent("expert")
    for task in easy_tasks:
        live = record_episode(recording_env(expert), expert, task, 0)
        assert live.success
        for before, after in zip(live.steps, stored[(task.id, 0)], strict=True):
            assert np.array_equal(np.asarray(after.image), before.image)
            assert after.image.size == (64, 64)
            assert {**after.__dict__, "image": None} == {**before.__dict__, "image": None}


def test_the_expert_chopping_a_tree_records_the_annotations_labelling_needs(recording):
    out, _ = recording
    (wood,) = [e for e in episodes_of(load_trajectories(out)) if e[0].task_id.startswith("embodied.collect_wood")]
    last = wood[-1]
    assert last.action == "do" and last.facing_material == "tree" and last.events == ("collect_wood",)
    assert last.inventory["wood"] == 1 and last.achievements["collect_wood"] == 1
    assert all(step.success and step.category == "embodied" for step in wood)
    assert [step.step for step in wood] == list(range(len(wood)))
    # The text view is the observation's before the step: the tree is faced, no wood yet.
    assert "inventory: empty" in last.text and "facing: " in last.text
    assert last.text.splitlines()[0] == "view:" and len(last.text.splitlines()[1]) == 9


def parser():
    root = argparse.ArgumentParser()
    cli.register(root.add_subparsers(dest="command"))
    return root


def run(*argv):
    args = parser().parse_args(["data", *argv])
    return args.run(args)


def test_the_commands_label_a_recording_into_every_format_and_count_it(recording, tmp_path, capsys):
    out, _ = recording
    assert run("label", "--data", str(out), "--out", str(tmp_path), "--history", "2") == 0
    report = json.loads((tmp_path / REPORT).read_text())
    assert set(report["datasets"]) == {"raw", "motion", "grounding", "skill", "motion_coa", "grounding_coa", "mixed",
                                       "mix"}
    assert all(counts["kept"] == report["steps"] for counts in report["datasets"].values())  # the expert never waits
    verified = report["verified_levels"]  # the mixed format's levels, printed as a table per category
    assert verified["steps"] == report["steps"] and verified["seconds_per_step"] > 0
    assert sum(verified["shares"]["all"][level] for level in ("skill", "grounding", "motion", "raw")) == \
        pytest.approx(1.0, abs=0.01)
    assert "verified levels" in capsys.readouterr().out
    assert run("stats", "--data", str(tmp_path)) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["grounding_coa"]["levels"] == {"grounding": report["steps"], "raw": report["steps"]}
    assert counts["raw"]["images"]["max"] == 3
    assert run("stats", "--data", str(out)) == 0
    assert json.loads(capsys.readouterr().out)["all"]["episodes"] == 2


def test_record_command_selects_the_split(tmp_path, capsys):
    assert run("record", "--split", "train", "--per-category", "1", "--trials", "1", "--out", str(tmp_path)) == 0
    assert "3 episodes planned" in capsys.readouterr().out
    assert {e["category"] for e in read_manifest(tmp_path)["episodes"]} == {"embodied", "craft", "combat"}


def test_mix_weights_parse():
    assert cli.parse_mix("uniform", ["raw", "skill"]) == {"raw": 1.0, "skill": 1.0}
    assert cli.parse_mix("raw=2,mixed=1", ["raw"]) == {"raw": 2.0, "mixed": 1.0}
    assert cli.parse_mix("none", ["raw"]) is None
    with pytest.raises(ValueError, match="FORMAT=WEIGHT"):
        cli.parse_mix("raw", ["raw"])


def test_parallel_workers_record_the_same_steps(recording, easy_tasks, tmp_path):
    out, _ = recording
    record("expert", easy_tasks, 1, tmp_path, workers=2, progress=False)
    serial, parallel = load_trajectories(out), load_trajectories(tmp_path)
    key = lambda row: (row["task_id"], row["step"])  # noqa: E731
    columns = ["task_id", "step", "action", "position", "events", "creatures"]
    assert sorted(serial.select_columns(columns), key=key) == sorted(parallel.select_columns(columns), key=key)


def test_episodes_come_in_task_and_trial_order_whatever_order_the_shards_hold(recording):
    """Datasets (and the models trained on them) must not depend on which worker finished first."""
    out, _ = recording
    rows = load_trajectories(out)
    shuffled = rows.shuffle(seed=3, keep_in_memory=True)  # no cache file beside the shards
    assert [steps[0].key for steps in episodes_of(shuffled)] == sorted(steps[0].key for steps in episodes_of(rows))
    assert episodes_of(shuffled) == episodes_of(rows)


def test_stats_count_tokens_with_a_saved_tokenizer(recording, tmp_path, capsys):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]").save_pretrained(tmp_path / "tokenizer")
    out, _ = recording
    label(out, ["raw"], tmp_path / "sft", None, BuildConfig())
    by_whitespace = cli.stats(tmp_path / "sft")["raw"]
    by_tokenizer = cli.stats(tmp_path / "sft", str(tmp_path / "tokenizer"))["raw"]
    assert by_tokenizer["reply_tokens"] == by_whitespace["reply_tokens"] == {"mean": 2, "median": 2, "p95": 2,
                                                                             "max": 2}  # "Action: NAME"


@pytest.mark.parametrize("damage, words", [
    ("truncate", r"recording shard .*shard-00000 is damaged"),
    ("garbage", r"recording shard .*shard-00000 is damaged"),
    ("manifest", r"manifest.json is damaged \(not JSON"),
    ("manifest-shape", r"manifest.json is damaged: it lacks the lists of shards and episodes"),
])
def test_a_damaged_recording_is_named(recording, tmp_path, damage, words):
    out, _ = recording
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    arrow = next((copy / "shard-00000").glob("*.arrow"))
    if damage == "truncate":
        arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    elif damage == "garbage":
        arrow.write_bytes(bytes(range(256)) * (arrow.stat().st_size // 256 + 1))
    elif damage == "manifest":
        (copy / "manifest.json").write_text('{"format": 2, "shards": [')
    else:
        (copy / "manifest.json").write_text('{"format": 2, "shards": "shard-00000"}')
    with pytest.raises(ValueError, match=words):
        load_trajectories(copy)
