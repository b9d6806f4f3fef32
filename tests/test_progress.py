"""Progress bars: in a log file (not a terminal) a few whole lines, never one line per redraw."""

import io

from crossagent.progress import progress_bar


class LogFile(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_a_log_gets_whole_lines_not_a_redraw_per_update():
    log = LogFile()
    with progress_bar(1000, "episodes", stream=log) as bar:
        for _ in range(1000):
            bar.update(1)
            bar.set_postfix(steps_per_s="12.0", refresh=False)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert 1 <= len(lines) <= 3  # the start, and the end (one more every 30 s on a long run)
    assert lines[-1].startswith("episodes: 100%") and "1000/1000" in lines[-1]


def test_a_disabled_bar_writes_nothing():
    log = LogFile()
    with progress_bar(10, "episodes", enabled=False, stream=log) as bar:
        bar.update(10)
    assert log.getvalue() == ""
