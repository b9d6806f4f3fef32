from crossagent.cli import main
from crossagent.tasks.suite import load_suite


def test_level_table_runs_every_oracle_and_writes_the_table(tmp_path, capsys):
    easy = [t.id for t in load_suite().tasks if t.world_seed in (0, 1) and t.difficulty == "easy"][:2]
    assert main(["level-table", "--suite", ",".join(easy), "--trials", "1", "--workers", "1", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "level_table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| Level")]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == ["raw", "motion", "grounding", "skill"]
    assert all(len(row.split(" | ")) == 7 for row in rows)
    assert "level_table.md" in capsys.readouterr().out
