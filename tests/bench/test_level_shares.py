"""The level-share figure: evaluation bars per category, and GRPO curves when a log is given."""

from dataclasses import replace

import pytest
from PIL import Image

from crossagent.bench.level_shares import plot_level_shares, read_level_log
from crossagent.bench.metrics import CategoryMetrics, Summary
from crossagent.tasks.task import CATEGORIES


def summary(agent: str, skill: float) -> Summary:
    base = CategoryMetrics("overall", 1, 1, 0, 1, 0.5, 0.0, 0, None, None, None, 2.0, 0.0,
                           {"skill": skill, "raw": 1 - skill}, {"skill": skill, "raw": 1.0})
    return Summary(agent, "s", tuple(replace(base, category=c) for c in CATEGORIES), base, ())


def test_the_training_log_is_read_per_category_kind_and_level(tmp_path):
    log = tmp_path / "level_shares.csv"
    log.write_text("iteration,category,kind,level,share\n1,craft,executed,skill,0.25\n2,craft,executed,skill,0.5\n"
                   "1,combat,contained,raw,1.0\n")
    assert read_level_log(log) == {("craft", "executed", "skill"): {1: 0.25, 2: 0.5},
                                   ("combat", "contained", "raw"): {1: 1.0}}
    with_training = plot_level_shares([summary("a", 0.3), summary("b", 0.7)], tmp_path / "with.png", log)
    without = plot_level_shares([summary("a", 0.3)], tmp_path / "without.png", tmp_path / "missing.csv")
    tall, short = Image.open(with_training).size, Image.open(without).size
    assert tall[0] == short[0] and tall[1] == 2 * short[1]  # two more rows of panels: the training curves
    assert Image.open(plot_level_shares([], tmp_path / "training.png", log)).size == short  # training rows only
    with pytest.raises(ValueError, match="no level shares"):
        plot_level_shares([], tmp_path / "nothing.png", tmp_path / "missing.csv")
