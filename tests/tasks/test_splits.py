"""Train / held-out split: disjoint, stable, and a per-category sample spread over templates."""

from collections import Counter

from crossagent.tasks.splits import heldout_tasks, train_tasks
from crossagent.tasks.suite import load_suite


def template(task) -> str:
    return task.id.split(".")[1]


def test_train_and_heldout_are_disjoint_and_cover_the_suite():
    suite = load_suite()
    train, heldout = {t.id for t in train_tasks(suite)}, {t.id for t in heldout_tasks(suite)}
    assert not train & heldout and train | heldout == {t.id for t in suite.tasks}
    assert set(suite.mini_ids) <= heldout


def test_a_per_category_sample_spreads_over_templates_before_repeating_one():
    suite = load_suite()
    sample = train_tasks(suite, 20)
    assert Counter(t.category for t in sample) == {"embodied": 20, "craft": 20, "combat": 20}
    assert len({t.id for t in sample}) == 60
    for category in ("embodied", "craft", "combat"):
        templates = {template(t) for t in train_tasks(suite) if t.category == category}
        counts = Counter(template(t) for t in sample if t.category == category)
        assert set(counts) == templates if len(templates) <= 20 else len(counts) == 20
        assert max(counts.values()) - min(counts.values()) <= 1
    small = {t.id for t in train_tasks(suite, 5)}
    assert len(small) == 15 and small <= {t.id for t in sample}  # a smaller sample is a prefix of each category
