"""Successes per task kind, and the episodes one model gained and lost against another."""

from crossagent.bench.kind_outcomes import gained_and_lost, never_solved, successes_per_kind
from crossagent.bench.results_store import EpisodeRow


def episode(task_id: str, success: bool, trial: int = 0) -> EpisodeRow:
    return EpisodeRow("agent", "suite", task_id, trial, task_id.split(".")[0], 0, success, 10)


def test_the_worlds_of_a_kind_count_together_and_an_unsolved_kind_is_still_a_key():
    rows = [episode("craft.table.kit.w1", True), episode("craft.table.kit.w7", True, 1),
            episode("craft.table.kit.w7", False), episode("embodied.sleep.tired.w2", False)]
    assert successes_per_kind(rows) == {"craft.table.kit": 2, "embodied.sleep.tired": 0}
    assert "embodied.sleep.tired" in successes_per_kind(rows)


def test_a_trade_between_kinds_shows_as_gained_and_lost():
    before = {"craft.pickaxe": 4, "craft.sword": 1, "combat.zombie": 3}
    after = {"craft.pickaxe": 0, "craft.sword": 5, "combat.zombie": 3, "craft.iron": 2}
    assert gained_and_lost(before, after) == (6, 4)  # +4 swords, +2 iron; -4 pickaxes: the overall change is +2
    assert gained_and_lost(after, before) == (4, 6)


def test_a_kind_is_never_solved_only_when_no_start_solved_it():
    starts = [{"a": 0, "b": 1, "c": 0}, {"a": 0, "b": 0, "c": 2}, {"a": 0, "d": 0}]
    assert never_solved(starts) == {"a", "d"}
