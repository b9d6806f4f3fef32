import json

from crossagent.bench.metrics import summarize
from crossagent.bench.report import format_table, markdown, write_report
from tests.bench.test_bench_metrics import MINI, hand_made_rows


def test_report_files_hold_the_numbers(tmp_path):
    summary = summarize(hand_made_rows(), "me", "s", MINI)
    paths = write_report([summary], tmp_path / "out")
    assert {p.name for p in paths.values()} == {"summary.md", "summary.json", "summary.png"}
    assert all(p.exists() and p.stat().st_size > 0 for p in paths.values())
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = paths["markdown"].read_text()
    assert "| me | embodied | 2 | 6 | 0 | 14.0 | 22.0 | 66.7 | 50.0 ± 40.8 |" in text
    assert "| me | craft | 2 | 6 | 1 | 6.0 | 23.6 | - | 50.0 ± 0.0 |" in text
    assert "| me | overall | 4 | 12 | 1 | 10.0 | 22.7 | 66.7 | 50.0 ± 20.4 |" in text
    assert "| me | A | embodied | 3 | 66.7 | 0 | 15.0 |" in text
    data = json.loads(paths["json"].read_text())
    (stored,) = data["summaries"]
    assert stored["agent"] == "me" and stored["overall"]["asr"] == 0.5
    assert [c["category"] for c in stored["categories"]] == ["embodied", "craft"]
    assert len(stored["tasks"]) == 4


def test_several_agents_make_row_groups(tmp_path):
    summaries = [summarize(hand_made_rows(agent), agent, "s", MINI) for agent in ("alpha", "beta")]
    table = format_table(summaries)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["Agent", "Category", "Tasks"]
    assert sum(line.startswith("alpha") for line in lines) == 3 and sum(line.startswith("beta") for line in lines) == 3
    assert sum(set(line) == {"-"} for line in lines) == 2  # one rule above each group
    assert "| beta | overall |" in markdown(summaries)
    paths = write_report(summaries, tmp_path)
    assert paths["chart"].exists()
