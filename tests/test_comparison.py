"""`crossagent compare` on a toy budget: every stage runs, the tables and the figure are written,
and a re-run resumes instead of training or evaluating again."""

import json
from dataclasses import replace

import pytest

from crossagent import comparison
from crossagent.bench.results_store import RESULTS_FILE, ResultsStore
from crossagent.comparison import LEVEL_SHARES_PNG, RESULTS_MD, ROWS, ComparisonSettings, run_comparison
from crossagent.pipeline import StageMismatch
from crossagent.tasks.suite import load_suite

EVAL_TASKS = ("craft.place_table.kit.w45", "embodied.collect_wood.near.w0")


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    suite = load_suite()
    patch = pytest.MonkeyPatch()
    # Two one-step tasks keep the evaluation to seconds; the held-out choice itself is tested in tests/tasks.
    patch.setattr(comparison, "heldout_tasks", lambda suite_, per_category: tuple(suite.task(i) for i in EVAL_TASKS))
    settings = ComparisonSettings(out=tmp_path_factory.mktemp("compare"), per_category=1, record_trials=1,
                                  trials=2, sft_steps=2, batch_size=2, grpo_updates=1, grpo_group_size=2,
                                  grpo_tasks_per_batch=1, grpo_max_episode_steps=4, slots=4, workers=1)
    rows = [ROWS[0], ROWS[-1]]  # raw-only and all-in-one SFT + GRPO (which trains the mix's SFT first)
    path = run_comparison(settings, rows)
    yield settings, rows, path
    patch.undo()


def test_every_row_gets_its_numbers_and_the_figure(compared):
    settings, rows, path = compared
    text = path.read_text()
    assert path.name == RESULTS_MD
    for row in rows:
        line = next(line for line in text.splitlines() if line.startswith(f"| {row.name} |"))
        assert line.count("±") == 3 and line.count(" - ") == 4  # embodied and craft held-out, overall; no mini task, no combat
    assert "SFT 2x2 + GRPO 1 it." in text
    expert = next(line for line in text.splitlines() if line.startswith("| (expert, reference) |"))
    assert "100.0 ± 0.0" in expert  # the expert solves both easy tasks in both trials
    assert (settings.out / LEVEL_SHARES_PNG).read_bytes()[:4] == b"\x89PNG"
    facts = json.loads((settings.out / "comparison.json").read_text())
    assert set(facts["sft"]) == {"raw", "mix"} and facts["grpo"]["iterations"] == 1 and facts["grpo"]["turns"] > 0
    with ResultsStore(settings.out / RESULTS_FILE) as store:
        for row in rows:
            assert len(store.done_keys(row.agent(), load_suite().name)) == len(EVAL_TASKS) * 2


def test_a_rerun_resumes_every_stage(compared):
    settings, rows, path = compared
    before = json.loads((settings.out / "comparison.json").read_text())
    run_comparison(settings, rows)
    after = json.loads((settings.out / "comparison.json").read_text())
    assert after["speed"] == before["speed"]  # nothing was evaluated again
    assert after["grpo"]["iterations"] == 1
    assert after["timings_s"] == before["timings_s"] and after["sft"] == before["sft"]  # the first measurements


def test_a_run_folder_built_with_other_settings_is_refused(compared):
    settings, rows, _ = compared
    with pytest.raises(StageMismatch, match=r"sft.max_steps: 2 -> 3"):
        run_comparison(replace(settings, sft_steps=3), rows)


def test_learned_executors_add_rows_beside_the_scripted_ones(compared, tmp_path):
    from crossagent.executors.checkpoint import save_policy
    from crossagent.executors.registry import LEARNED_LEVELS, Executors
    from tests.executors.conftest import small_policy

    settings, rows, _ = compared
    for level in LEARNED_LEVELS:
        save_policy(small_policy(level), tmp_path / level)
    learned = replace(settings, executors="learned", executors_dir=tmp_path)
    text = run_comparison(learned, rows).read_text()
    labels = [line.split(" | ")[0].removeprefix("| ") for line in text.split("## Steps")[0].splitlines()
              if line.startswith("| ") and not line.startswith("| row")]
    # raw-only runs in slow mode (raw actions, no executor): one row; the GRPO row runs in dynamic mode: two.
    assert labels[:3] == ["raw-only", "all-in-one SFT + GRPO", "all-in-one SFT + GRPO + learned executors"]
    with ResultsStore(settings.out / RESULTS_FILE) as store:
        agent = ROWS[-1].agent(Executors("learned", tmp_path))
        assert agent == "all-in-one SFT + GRPO+learned@dynamic"
        assert len(store.done_keys(agent, load_suite().name)) == len(EVAL_TASKS) * 2
    facts = json.loads((settings.out / "comparison.json").read_text())
    assert {ROWS[0].agent(), ROWS[-1].agent(), agent} <= set(facts["speed"])  # the scripted rows keep their speed
