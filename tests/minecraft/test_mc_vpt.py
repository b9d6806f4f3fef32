import json
from pathlib import Path

import pytest

from crossagent.actions.minecraft.env_action import is_null, make_action, pressed_buttons
from crossagent.actions.minecraft.motion_labeller import format_motion, frame_motions
from crossagent.actions.minecraft.vpt import VptFormatError, convert_vpt_file, read_vpt_jsonl, vpt_to_env_actions

FIXTURE = Path(__file__).parent / "fixtures" / "vpt_clip.jsonl"


@pytest.fixture(scope="module")
def frames():
    return read_vpt_jsonl(FIXTURE)


@pytest.fixture(scope="module")
def actions(frames):
    return vpt_to_env_actions(frames)


def test_fixture_has_thirty_frames(frames, actions):
    assert len(frames) == len(actions) == 30


def test_keys_map_through_the_keyboard_table(actions):
    assert pressed_buttons(actions[5]) == ("forward", "sprint")
    assert pressed_buttons(actions[7]) == ("forward", "jump")
    assert pressed_buttons(actions[23]) == ("back", "left")
    assert pressed_buttons(actions[24]) == ("sneak",)
    assert pressed_buttons(actions[25]) == ("drop",)
    assert pressed_buttons(actions[26]) == ("swapHands",)
    assert is_null(actions[27])  # the chat key is not an env button
    assert pressed_buttons(actions[28]) == ("pickItem",)


def test_camera_is_mouse_pixels_times_0_15(actions):
    assert actions[1]["camera"] == [0.0, 1.5]
    assert actions[2]["camera"] == [-0.6, 0.0]
    assert actions[6]["camera"] == [0.0, -3.0]
    assert actions[12]["camera"] == [0.15, 0.45]
    assert actions[18]["camera"] == [1.8, 4.5]


def test_hotbar_press_inferred_from_slot_changes(actions):
    assert pressed_buttons(actions[8]) == ("hotbar.3",)  # scroll wheel: slot 0 -> 2, no key recorded
    assert is_null(actions[9])  # slot unchanged
    assert pressed_buttons(actions[10]) == ("hotbar.5",)  # key 5 and slot 4 agree


def test_hotbar_before_frame_zero_counts_as_slot_zero():
    frame = json.loads(FIXTURE.read_text().splitlines()[9])
    assert frame["hotbar"] == 2
    assert pressed_buttons(vpt_to_env_actions([frame])[0]) == ("hotbar.3",)


def test_attack_stuck_from_the_start_is_dropped_until_a_real_press(actions):
    # Frame 0 reports newButtons == [0]: stuck. Held (1-2), released (3), held again
    # without a new press (4): all attack=0.
    assert [actions[i]["attack"] for i in range(5)] == [0, 0, 0, 0, 0]
    # Frame 11 presses attack (newButtons [0]); the hold through 13 is attack=1.
    assert [actions[i]["attack"] for i in range(11, 15)] == [1, 1, 1, 0]


def test_attack_held_without_new_press_counts_when_not_stuck(frames):
    start = dict(frames[3], mouse={**frames[3]["mouse"], "buttons": [0], "newButtons": []})
    assert vpt_to_env_actions([start])[0]["attack"] == 1


def test_convert_vpt_file(tmp_path):
    rows = convert_vpt_file(FIXTURE)
    assert len(rows) == 30
    assert rows[6] == {
        "frame": 6,
        "env_action": make_action(["forward", "sprint"], camera=(0, -3.0)),
        "text_action": "Action: move(-20, 0) and press(w, left.control)",
    }
    assert rows[11]["text_action"] == "Action: move(0, 0) and press() and click(left)"
    assert rows[8]["text_action"] == "Action: move(0, 0) and press(3)"
    assert json.loads(json.dumps(rows)) == rows


def test_motions_of_the_inventory_episode(frames, actions):
    gui = [frame["isGuiOpen"] for frame in frames]
    labels = [format_motion(label) for label in frame_motions(actions, gui)]
    assert labels[16:23] == [
        "Motion: open inventory", "Motion: open inventory", "Motion: cursor move right and down",
        "Motion: operate gui", "Motion: cursor move left", "Motion: close inventory", "Motion: no_op",
    ]


@pytest.mark.parametrize("line, problem", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"keyboard": {"keys": []}, "hotbar": 0}', "'mouse'"),
    ('{"mouse": {"dx": "1", "dy": 0, "buttons": [], "newButtons": []}, "keyboard": {"keys": []}, "hotbar": 0}', "numbers"),
    ('{"mouse": {"dx": 1, "dy": 0, "buttons": [true], "newButtons": []}, "keyboard": {"keys": []}, "hotbar": 0}', "integers"),
    ('{"mouse": {"dx": 1, "dy": 0, "buttons": [], "newButtons": []}, "keyboard": {}, "hotbar": 0}', "keyboard.keys"),
    ('{"mouse": {"dx": 1, "dy": 0, "buttons": [], "newButtons": []}, "keyboard": {"keys": []}, "hotbar": 9}', "hotbar"),
])
def test_malformed_lines_name_the_line_number(tmp_path, line, problem):
    good = FIXTURE.read_text().splitlines()[0]
    path = tmp_path / "clip.jsonl"
    path.write_text("\n".join([good, "", good, line, good]) + "\n")
    with pytest.raises(VptFormatError) as error:
        read_vpt_jsonl(path)
    assert f"{path}:4:" in str(error.value)
    assert problem in str(error.value)


def test_convert_vpt_cli_prints_and_writes(tmp_path, capsys):
    from crossagent.cli import main

    fixture = Path(__file__).parent / "fixtures" / "vpt_clip.jsonl"
    assert main(["mc", "convert-vpt", str(fixture), "--text-only"]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert len(lines) == 30 and all(line.startswith("Action: move(") for line in lines)
    out = tmp_path / "actions.jsonl"
    assert main(["mc", "convert-vpt", str(fixture), "--out", str(out)]) == 0
    first = json.loads(out.read_text().split("\n")[0])
    assert set(first) == {"frame", "env_action", "text_action"}
    assert main(["mc", "convert-vpt", str(tmp_path / "missing.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
