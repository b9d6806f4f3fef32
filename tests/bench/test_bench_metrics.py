import math

import pytest

from crossagent.bench.episode import EpisodeResult
from crossagent.bench.metrics import summaries_from_store, summarize
from crossagent.bench.results_store import EpisodeRow, ResultsStore

# task: (category, [(success, steps, error) per trial 0..2])
EPISODES = {
    "A": ("embodied", [(True, 10, None), (True, 20, None), (False, 30, None)]),
    "B": ("embodied", [(False, 30, None), (True, 12, None), (False, 30, None)]),
    "C": ("craft", [(True, 4, None), (True, 6, None), (True, 8, None)]),
    "D": ("craft", [(False, 0, "boom"), (False, 50, None), (False, 50, None)]),
}
MINI = ("A",)


def hand_made_rows(agent: str = "me") -> list[EpisodeRow]:
    return [EpisodeRow(agent, "s", task_id, trial, category, seed=trial, success=success, steps=steps, error=error)
            for task_id, (category, trials) in EPISODES.items()
            for trial, (success, steps, error) in enumerate(trials)]


def test_category_metrics_match_hand_computed_values():
    summary = summarize(hand_made_rows(), "me", "s", MINI)
    embodied, craft = summary.categories
    assert (embodied.category, embodied.tasks, embodied.episodes, embodied.errors, embodied.trials) == ("embodied", 2, 6, 0, 3)
    # per-trial ASR: (1+0)/2, (1+1)/2, (0+0)/2
    assert embodied.asr == pytest.approx(0.5)
    assert embodied.asr_std == pytest.approx(math.sqrt((0 + 0.25 + 0.25) / 3))
    assert embodied.asr_mini == pytest.approx(2 / 3) and embodied.mini_tasks == 1
    assert embodied.avg_steps_success == pytest.approx((10 + 20 + 12) / 3)
    assert embodied.avg_steps_all == pytest.approx((10 + 20 + 30 + 30 + 12 + 30) / 6)

    assert (craft.tasks, craft.episodes, craft.errors) == (2, 6, 1)
    assert craft.asr == pytest.approx(0.5) and craft.asr_std == pytest.approx(0.0)
    assert craft.asr_mini is None and craft.mini_tasks == 0
    assert craft.avg_steps_success == pytest.approx(6.0)
    assert craft.avg_steps_all == pytest.approx((4 + 6 + 8 + 50 + 50) / 5)  # the errored episode is left out


def test_overall_weighs_every_task_equally():
    overall = summarize(hand_made_rows(), "me", "s", MINI).overall
    assert (overall.category, overall.tasks, overall.episodes, overall.errors) == ("overall", 4, 12, 1)
    # per-trial ASR over A, B, C, D: 2/4, 3/4, 1/4
    assert overall.asr == pytest.approx(0.5)
    assert overall.asr_std == pytest.approx(math.sqrt((0 + 0.0625 + 0.0625) / 3))
    assert overall.asr_mini == pytest.approx(2 / 3)
    assert overall.avg_steps_success == pytest.approx((10 + 20 + 12 + 4 + 6 + 8) / 6)
    assert overall.avg_steps_all == pytest.approx(250 / 11)


def test_per_task_success_rates():
    tasks = {t.task_id: t for t in summarize(hand_made_rows(), "me", "s", MINI).tasks}
    assert [t for t in tasks] == ["A", "B", "C", "D"]
    assert tasks["A"].success_rate == pytest.approx(2 / 3) and tasks["A"].avg_steps_success == pytest.approx(15)
    assert tasks["B"].successes == 1 and tasks["B"].avg_steps_success == 12
    assert tasks["C"].success_rate == 1.0
    assert (tasks["D"].success_rate, tasks["D"].errors, tasks["D"].avg_steps_success) == (0.0, 1, None)


def test_no_rows_is_an_error():
    with pytest.raises(ValueError, match="no stored episodes"):
        summarize([], "me", "s")


def test_summaries_from_store_per_agent_with_a_key_filter(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.set_mini_ids("s", MINI)
        for agent in ("me", "you"):
            for row in hand_made_rows(agent):
                store.add(EpisodeResult(row.task_id, row.category, row.trial, row.seed, row.success, row.steps,
                                        0.0, 0.0, False), agent, "s", row.error)
        store.add(EpisodeResult("X", "combat", 0, 0, True, 1, 0.0, 0.0, False), "me", "other")
        summaries = summaries_from_store(store, {"s"})
        assert [(s.agent, s.suite) for s in summaries] == [("me", "s"), ("you", "s")]
        assert summaries[0].overall.asr_mini == pytest.approx(2 / 3)  # mini ids come from the store
        only_trial_0 = summaries_from_store(store, {"s"}, keys={(t, 0) for t in EPISODES})
        assert only_trial_0[0].overall.episodes == 4
        assert only_trial_0[0].overall.asr == pytest.approx(0.5) and only_trial_0[0].overall.asr_std == 0.0


def test_reply_metrics_from_stored_level_counts():
    def row(task_id, calls, executed, contained):
        extra = {"calls": calls, "steps": sum(executed.values()), "invalid_steps": executed.get("invalid", 0),
                 "executed": executed, "contained": contained}
        return EpisodeRow("lv", "s", task_id, 0, "craft", seed=0, success=True, steps=extra["steps"], extra=extra)

    rows = [row("A", 2, {"skill": 10}, {"skill": 10, "raw": 4}),
            row("B", 4, {"raw": 3, "invalid": 1}, {"raw": 4})]
    craft = summarize(rows, "lv", "s").categories[0]
    assert craft.steps_per_call == pytest.approx(14 / 6)
    assert craft.invalid_rate == pytest.approx(1 / 14)
    assert craft.executed_share == pytest.approx({"invalid": 1 / 14, "raw": 3 / 14, "skill": 10 / 14})
    assert craft.contained_share == pytest.approx({"raw": 8 / 14, "skill": 10 / 14})
    plain = summarize(hand_made_rows(), "me", "s", MINI).categories[0]
    assert plain.steps_per_call is None and plain.executed_share is None
