import json
import sqlite3

import imageio.v3 as iio
import pytest

from crossagent.bench.episode import make_env
from crossagent.bench.episode_loop import run_episode
from crossagent.bench.replay import ReplayMismatch, ScriptedAgent, replay
from crossagent.bench.results_store import ResultsStore
from crossagent.bench.runner import run_benchmark
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.start_state import Block, StartState
from crossagent.tasks.predicates import Gain
from crossagent.tasks.suite import TaskSuite
from tests.bench.conftest import make_task

NOOP, DO = ACTION_NAMES.index("noop"), ACTION_NAMES.index("do")
# The player starts facing down: a tree right below is one `do` away.
CHOP = make_task("chop", "embodied", 0, Gain("wood", 1), budget=4, start=StartState(blocks=(Block("tree", 0, 1),)))


def stored_chop(tmp_path, actions):
    """A results dir holding `chop`, played with `actions`, plus the suite file it comes from."""
    suite_file = tmp_path / "suite.json"
    TaskSuite("chop-suite", 1, (CHOP,), ()).save(suite_file)
    agent = ScriptedAgent(actions)
    result = run_episode(make_env(agent), agent, CHOP, trial=0)
    with ResultsStore(tmp_path / "results.sqlite") as store:
        store.add(result, "scripted", "chop-suite")
    return result, suite_file


def tamper(tmp_path, actions):
    db = sqlite3.connect(tmp_path / "results.sqlite")
    db.execute("UPDATE episodes SET actions = ?", (json.dumps(actions),))
    db.commit()
    db.close()


def test_replay_writes_one_frame_per_step_plus_the_start(tmp_path, tiny_tasks, suite_file):
    run_benchmark("random", tiny_tasks[2:3], trials=2, workers=1, store_path=tmp_path / "results.sqlite",
                  suite_name="tiny", progress=False)
    replayed = replay(tmp_path, "random", "survive-0", 1, tmp_path / "ep.gif", suite_file=suite_file, frame_size=64)
    frames = iio.imread(tmp_path / "ep.gif", index=None)
    assert replayed.success and replayed.steps == 5
    assert frames.shape[0] == replayed.steps + 1 and frames.shape[1:3] == (64, 64)


def test_replay_reproduces_a_success_and_rejects_tampered_actions(tmp_path):
    result, suite_file = stored_chop(tmp_path, [NOOP, DO])
    assert result.success and result.steps == 2
    assert replay(tmp_path, "scripted", "chop", 0, tmp_path / "ok.gif", suite_file=suite_file).steps == 2
    tamper(tmp_path, [NOOP, NOOP, NOOP, NOOP])  # same length, no chop: the replay fails where the run succeeded
    with pytest.raises(ReplayMismatch, match="stored success=True steps=2"):
        replay(tmp_path, "scripted", "chop", 0, tmp_path / "bad.gif", suite_file=suite_file)
    tamper(tmp_path, [NOOP])  # too short: the actions run out
    with pytest.raises(ReplayMismatch, match="ran out"):
        replay(tmp_path, "scripted", "chop", 0, tmp_path / "bad.gif", suite_file=suite_file)


def test_replay_names_what_is_missing(tmp_path, suite_file):
    _, chop_suite = stored_chop(tmp_path, [DO])
    with pytest.raises(KeyError, match="no stored episode"):
        replay(tmp_path, "scripted", "chop", 3, tmp_path / "x.gif", suite_file=chop_suite)
    with pytest.raises(ValueError, match="stored for suite 'chop-suite' but the suite file holds 'tiny'"):
        replay(tmp_path, "scripted", "chop", 0, tmp_path / "x.gif", suite_file=suite_file)
    with pytest.raises(FileNotFoundError):
        replay(tmp_path / "nowhere", "scripted", "chop", 0, tmp_path / "x.gif")
