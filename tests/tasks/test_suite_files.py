"""Task and suite files: round trips and clear errors for malformed input."""

import json

import pytest

from crossagent.agents import registry
from crossagent.agents.random_agent import RandomAgent
from crossagent.cli import main
from crossagent.tasks.suite import load_suite, suite_from_dict

GOOD_TASK = {
    "id": "embodied.collect_wood.test.w0", "category": "embodied", "difficulty": "easy",
    "instruction": "Collect a piece of wood.", "paraphrases": ["Chop a tree.", "Get one wood."],
    "world_seed": 0, "start": {"inventory": {"wood": 1}, "blocks": [["tree", 1, 0]]}, "budget": 50,
    "success": {"kind": "gain", "item": "wood", "amount": 1}, "expert_steps": 2,
}


def write_suite(tmp_path, tasks, mini=()):
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"format": 1, "name": "t", "version": 1, "tasks": tasks, "mini": list(mini)}))
    return path


def test_a_suite_round_trips(tmp_path):
    suite = load_suite(write_suite(tmp_path, [GOOD_TASK], mini=[GOOD_TASK["id"]]))
    assert suite.tasks[0].to_dict() == {**GOOD_TASK, "start": suite.tasks[0].start.to_dict()}
    assert suite.mini[0].id == GOOD_TASK["id"]
    assert suite_from_dict(suite.to_dict()) == suite


@pytest.mark.parametrize("change, message", [
    ({"category": "cooking"}, "category: 'cooking' is not one of embodied, craft, combat"),
    ({"paraphrases": ["only one"]}, "paraphrases: must be a list of at least 2"),
    ({"budget": 0}, "budget: 0 is not a positive integer"),
    ({"world_seed": "seven"}, f"world_seed: 'seven' is not an integer in 0..{2**32 - 1}"),
    ({"success": {"kind": "gain", "item": "gold"}}, "success.item: 'gold'"),
    ({"start": {"inventory": {"wood": -1}}}, "start.inventory.wood: -1"),
    ({"colour": "blue"}, "unknown field(s) colour"),
    ({"budget": True}, "budget: True is not a positive integer"),
    ({"world_seed": 2**70}, f"world_seed: {2**70} is not an integer in 0..{2**32 - 1}"),
    ({"start": {"blocks": [["stone", 500, 500]]}}, "start.blocks: stone at (500, 500) is outside the 64x64 world"),
    ({"start": {"blocks": [["tree", "1", 0]]}}, "start.blocks: tree at ('1', 0): offsets must be integers"),
    ({"start": {"player_offset": [0]}}, "start.player_offset: expected [dx, dy], got [0]"),
    ({"start": {"inventory": {"wood": True}}}, "start.inventory.wood: True is not an integer in 0..9"),
    ({"success": {"kind": "gain", "item": "wood", "colour": "red"}},
     "success: unknown field(s) colour for kind 'gain' (known: item, amount)"),
    ({"success": {"kind": "all", "of": [{"kind": "reach", "material": "water", "amount": 2}]}},
     "success.of[0]: unknown field(s) amount for kind 'reach' (known: material)"),
])
def test_malformed_tasks_name_the_task_and_field(tmp_path, change, message):
    path = write_suite(tmp_path, [{**GOOD_TASK, **change}])
    with pytest.raises(ValueError) as error:
        load_suite(path)
    assert f"suite.tasks[0]: task '{GOOD_TASK['id']}': {message}" in str(error.value)
    assert str(path) in str(error.value)


def test_missing_fields_and_files_and_json_errors(tmp_path):
    task = dict(GOOD_TASK)
    del task["budget"]
    with pytest.raises(ValueError, match="budget: missing"):
        load_suite(write_suite(tmp_path, [task]))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_suite(tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x",\n "tasks": [}')
    with pytest.raises(ValueError, match=r"not valid JSON \(line 2"):
        load_suite(broken)


def test_a_suite_file_that_is_a_directory_is_named(tmp_path, capsys):
    with pytest.raises(ValueError, match=f"task suite file {tmp_path} is a directory"):
        load_suite(tmp_path)
    assert main(["tasks", "list", "--suite-file", str(tmp_path)]) == 2
    assert f"task suite file {tmp_path} is a directory" in capsys.readouterr().err


def test_duplicate_ids_and_unknown_mini_ids_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="duplicate task id"):
        load_suite(write_suite(tmp_path, [GOOD_TASK, GOOD_TASK]))
    with pytest.raises(ValueError, match="mini set names unknown task id"):
        load_suite(write_suite(tmp_path, [GOOD_TASK], mini=["craft.nothing"]))


def test_cli_reports_unknown_ids_and_bad_files(tmp_path, capsys):
    path = write_suite(tmp_path, [GOOD_TASK])
    assert main(["tasks", "show", "no.such.task", "--suite-file", str(path)]) == 2
    assert "no task with id 'no.such.task'" in capsys.readouterr().err
    assert main(["tasks", "show", GOOD_TASK["id"], "--suite-file", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["budget"] == 50
    bad = write_suite(tmp_path, [{**GOOD_TASK, "budget": -5}])
    assert main(["tasks", "list", "--suite-file", str(bad)]) == 2
    assert "budget: -5" in capsys.readouterr().err


def test_validate_fails_and_names_a_task_the_expert_cannot_solve(tmp_path, capsys):
    impossible = {**GOOD_TASK, "id": "embodied.impossible", "budget": 30,
                  "start": {"blocks": [["diamond", 2, 0]]}, "success": {"kind": "gain", "item": "diamond"}}
    path = write_suite(tmp_path, [GOOD_TASK, impossible])
    code = main(["tasks", "validate", "--suite-file", str(path), "--workers", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "validated 2 tasks: expert solved 1" in out and "UNSOLVED embodied.impossible" in out


class ExplodingAgent(RandomAgent):
    def act(self, observation, state):
        raise RuntimeError("the expert exploded")


def test_validate_prints_why_a_task_raised(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(registry.AGENTS, "expert", ExplodingAgent)  # one worker: it runs in this process
    path = write_suite(tmp_path, [GOOD_TASK])
    code = main(["tasks", "validate", "--suite-file", str(path), "--workers", "1", "--out", str(tmp_path)])
    assert code == 1
    assert f"ERROR {GOOD_TASK['id']}: RuntimeError: the expert exploded" in capsys.readouterr().out


def test_tasks_list_json_and_every_suite_command_takes_a_suite_file(tmp_path, capsys):
    from crossagent.cli import build_parser
    from crossagent.tasks.task import Task

    assert main(["tasks", "list", "--suite", "mini", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 30 and {task["category"] for task in listed} == {"embodied", "craft", "combat"}
    assert Task.from_dict(listed[0]).id == listed[0]["id"]
    parser = build_parser()
    for command in (["tasks", "list"], ["tasks", "show", "x"], ["tasks", "validate"], ["bench", "--agent", "expert",
                    "--out", str(tmp_path)], ["level-table"], ["eval-model", "--model", "m", "--out", str(tmp_path)],
                    ["data", "record", "--out", str(tmp_path)], ["data", "label", "--data", "d", "--out", str(tmp_path)]):
        assert parser.parse_args([*command, "--suite-file", "suite.json"]).suite_file == "suite.json", command
