"""SFT examples: the rejection filter's rules and counts, the history turns, the saved dataset."""

import dataclasses
import json

import numpy as np
import pytest

from crossagent.data import builders
from crossagent.data.builders import BuildConfig, build_dataset, build_examples, rejection
from tests.data.conftest import make_step


def episode(trial=0):
    """Walk right twice, chop the tree, wait, chop again."""
    tree = dict(trial=trial, facing=(1, 0), facing_material="tree")
    return [make_step(0, "move_right", (10, 10), (11, 10), trial),
            make_step(1, "move_right", (11, 10), (12, 10), trial),
            make_step(2, "do", (12, 10), events=("collect_wood",), **tree), make_step(3, "noop", (12, 10), **tree),
            make_step(4, "do", (12, 10), events=("collect_wood",), **tree)]


@pytest.mark.parametrize("reply, chain, recorded, rule", [
    ("Action: do", ("raw",), "do", None),
    ("Motion: do 2\nAction: do", ("motion", "raw"), "do", None),
    ("Skill: collect wood", ("skill",), "move_left", None),  # nothing to decode: no action check
    ("Action: do\nAction: do", ("raw",), "do", "action_lines"),
    ("Motion: do 2", ("motion", "raw"), "do", "action_lines"),
    ("Motion: do\nMotion: do 2\nAction: do", ("motion", "raw"), "do", "upper_lines"),
    ("Grounding: collect\nAction: do", ("grounding", "raw"), "do", "unparseable"),
    ("I think I will chop.", ("skill",), "do", "unparseable"),
    ("Motion: move left\nAction: do", ("motion", "raw"), "move_left", "action_mismatch"),
    ("Motion: move left 2", ("motion",), "do", "action_mismatch"),
])
def test_each_filter_rule_rejects_what_it_should(reply, chain, recorded, rule):
    assert rejection(reply, chain, recorded) == rule


def test_no_op_steps_are_dropped_unless_kept_at_a_rate():
    _, report = build_examples([episode()], {"raw": 1.0}, BuildConfig(), 64)
    assert report.kept == 4 and report.rejected["noop"] == 1
    _, report = build_examples([episode()], {"raw": 1.0}, BuildConfig(keep_noop=1.0), 64)
    assert report.kept == 5 and report.rejected["noop"] == 0


def test_the_report_counts_each_rule(monkeypatch):
    bad = {0: "Action: do\nAction: do", 1: "Skill: x\nSkill: y\nAction: move_right", 2: "Action: jump",
           4: "Action: move_left"}
    monkeypatch.setattr(builders, "_reply", lambda fmt, labels, step, config, level: bad.get(step.step, "Action: noop"))
    examples, report = build_examples([episode()], {"raw": 1.0}, BuildConfig(), 64)
    assert examples == []
    assert report.rejected == {"action_lines": 1, "upper_lines": 1, "unparseable": 1, "action_mismatch": 1,
                               "noop": 1}


def test_the_history_is_the_previous_questions_not_the_previous_steps():
    """Every step's skill is `collect wood`: asked at 0, again at 2 (k=2 steps have run), at 3 (the wood
    collected at 2 ended that call), not at 4 (the new call goes on). Every step is an example."""
    examples, _ = build_examples([episode()], {"skill": 1.0}, BuildConfig(history=1, requery_every=2,
                                                                        keep_noop=1.0), 64)
    history_steps = [[int(image[0, 0, 0]) for image in example["images"]][:-1] for example in examples]
    assert history_steps == [[], [0], [0], [2], [3]]
    slow, _ = build_examples([episode()], {"skill": 1.0}, BuildConfig(history=1, requery_every=None,
                                                                    keep_noop=1.0), 64)
    assert [[int(image[0, 0, 0]) for image in example["images"]][:-1] for example in slow] == [[], [0], [1], [2], [3]]


def test_examples_carry_the_last_h_turns_of_the_episode_in_order():
    examples, _ = build_examples([episode()], {"motion_coa": 1.0}, BuildConfig(history=2, keep_noop=1.0), 64)
    last = examples[-1]
    messages = json.loads(last["messages"])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert messages[1]["content"][0]["text"] == "Task: Do it."
    image_items = sum(item["type"] == "image" for m in messages for item in m["content"])
    assert image_items == len(last["images"]) == 3
    assert [int(image[0, 0, 0]) for image in last["images"]] == [2, 3, 4]  # steps t-2, t-1, t
    assert [m["content"][0]["text"] for m in messages if m["role"] == "assistant"] == [
        "Motion: do\nAction: do", "Motion: wait\nAction: noop", "Motion: do\nAction: do"]
    first = examples[0]
    assert len(first["images"]) == 1 and len(json.loads(first["messages"])) == 3


def test_a_text_observation_is_shown_for_the_current_step_only():
    steps = [dataclasses.replace(step, text=f"view {step.step}") for step in episode()]
    examples, _ = build_examples([steps], {"raw": 1.0}, BuildConfig(history=1, use_image=False, use_text=True,
                                                                     keep_noop=1.0), 64)
    messages = json.loads(examples[2]["messages"])
    texts = [item.get("text") for m in messages if m["role"] == "user" for item in m["content"]]
    assert texts == ["Task: Do it.", "view 2"]  # step 1's turn keeps its reply, not its view
    assert examples[2]["images"] == []
    assert "legend:" in messages[0]["content"][0]["text"]  # the system prompt explains the view once


def test_mixed_history_replays_the_chain_each_step_got():
    config = BuildConfig(history=4, keep_noop=1.0, mixed_levels="random")
    examples, report = build_examples([episode()], {"mixed": 1.0}, config, 64)
    replies = [json.loads(e["messages"])[-1]["content"][0]["text"] for e in examples]
    history = [m["content"][0]["text"] for m in json.loads(examples[-1]["messages"])[2:-1] if m["role"] == "assistant"]
    assert history == replies[:-1]
    assert all(e["levels"] in [list(chain) for chain in builders.MIXED_CHAINS] for e in examples)


def test_verified_mixed_chains_end_at_each_step_s_verified_level():
    verified = {("t", 0): ("grounding", "motion", "skill", "raw", "skill")}
    examples, report = build_examples([episode()], {"mixed": 1.0}, BuildConfig(history=4, keep_noop=1.0), 64,
                                      verified)
    assert report.kept == 5
    assert [e["levels"] for e in examples] == [list(builders.VERIFIED_CHAINS[level]) for level in verified[("t", 0)]]
    replies = [json.loads(e["messages"])[-1]["content"][0]["text"] for e in examples]
    assert replies[1].startswith("Grounding: collect <|object_ref_start|>tree") and replies[1].endswith(
        "\nMotion: move right")
    assert replies[2] == "Skill: collect wood"
    assert replies[3].endswith("\nAction: noop")
    history = [m["content"][0]["text"] for m in json.loads(examples[-1]["messages"])[2:-1] if m["role"] == "assistant"]
    assert history == replies[:-1]  # each past turn keeps the chain of its own verified level


def test_verified_mixed_chains_need_the_levels_and_the_mode_is_checked():
    with pytest.raises(ValueError, match="verified level"):
        build_examples([episode()], {"mixed": 1.0}, BuildConfig(), 64)
    with pytest.raises(ValueError, match="mixed_levels"):
        BuildConfig(mixed_levels="sometimes")


def test_a_mix_draws_formats_with_their_weights_and_a_saved_dataset_round_trips(tmp_path):
    episodes = [episode(trial) for trial in range(40)]
    dataset, report = build_dataset(episodes, {"raw": 3.0, "skill": 1.0}, BuildConfig(), 64, tmp_path / "mix")
    formats = dataset["format"]
    assert set(formats) == {"raw", "skill"} and formats.count("raw") > 2 * formats.count("skill")
    assert report.kept == len(dataset)
    from datasets import load_from_disk

    loaded = load_from_disk(str(tmp_path / "mix"))
    assert loaded["messages"] == dataset["messages"]
    assert np.array_equal(np.asarray(loaded[0]["images"][-1]), episodes[0][0].image)


def test_unknown_formats_are_refused():
    with pytest.raises(ValueError, match="unknown output format"):
        build_examples([episode()], {"poetry": 1.0}, BuildConfig(), 64)
