import json
import math

import pytest

from crossagent.bench.crafter_score import (CRAFTER_SUITE, EPISODE_LENGTH, achievement_rates, crafter_score,
                                            default_task, default_task_by_id, format_score, run_crafter_score,
                                            write_score)
from crossagent.bench.results_store import ResultsStore
from crossagent.envs.crafter_env import ACHIEVEMENTS
from crossagent.envs.start_state import StartState
from crossagent.tasks.predicates import AllOf


def test_score_formula_against_hand_computed_values():
    assert len(ACHIEVEMENTS) == 22
    assert crafter_score([0.0] * 22) == 0.0
    assert crafter_score([100.0] * 22) == pytest.approx(100.0)
    assert crafter_score([100.0] + [0.0] * 21) == pytest.approx(101 ** (1 / 22) - 1)  # ~0.2334
    assert crafter_score([50.0, 10.0] + [0.0] * 20) == pytest.approx(math.exp((math.log(51) + math.log(11)) / 22) - 1)


def test_rates_count_episodes_that_unlocked_at_least_once():
    rates = achievement_rates([["collect_wood"], ["collect_wood", "place_table"], []])
    assert list(rates) == list(ACHIEVEMENTS)
    assert rates["collect_wood"] == pytest.approx(200 / 3)
    assert rates["place_table"] == pytest.approx(100 / 3)
    assert rates["collect_diamond"] == 0.0
    with pytest.raises(ValueError):
        achievement_rates([])


def test_default_task_is_a_full_unedited_episode():
    task = default_task(7)
    assert (task.world_seed, task.budget, task.start, task.category) == (7, EPISODE_LENGTH, StartState(), "embodied")
    assert isinstance(task.success, AllOf) and len(task.success.parts) == 22
    assert default_task_by_id(task.id) == task
    with pytest.raises(KeyError):
        default_task_by_id("wood-0")


def test_run_scores_stores_and_resumes(tmp_path):
    result = run_crafter_score("random", episodes=2, workers=1, out_dir=tmp_path, progress=False)
    assert (result.agent, result.episodes, result.errors) == ("random", 2, 0)
    assert result.score == pytest.approx(crafter_score(result.rates.values()))
    assert 0 < result.mean_length <= EPISODE_LENGTH
    with ResultsStore(tmp_path / "results.sqlite") as store:
        rows = store.episodes("random", CRAFTER_SUITE)
    assert [r.task_id for r in rows] == ["crafter-seed-0", "crafter-seed-1"]
    assert all(r.died or r.steps == EPISODE_LENGTH for r in rows)  # ran to the end, not to a predicate
    assert result.rates == achievement_rates([r.unlocked for r in rows])
    again = run_crafter_score("random", episodes=2, workers=1, out_dir=tmp_path, progress=False)
    assert again == result
    with ResultsStore(tmp_path / "results.sqlite") as store:
        # nothing ran again: the rows are the first run's, to the wall time
        assert [(r.finished_at, r.wall_time) for r in store.episodes("random", CRAFTER_SUITE)] == \
            [(r.finished_at, r.wall_time) for r in rows]

    paths = write_score(result, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["score"] == result.score and data["references"]["DreamerV3"] == 14.5
    assert paths["chart"].read_bytes()[:4] == b"\x89PNG"
    text = format_score(result)
    assert "random (this run)" in text and "human experts" in text and "collect_wood" in text
