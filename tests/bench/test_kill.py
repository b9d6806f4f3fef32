"""A `crossagent bench` killed with SIGKILL leaves no worker behind, and a re-run resumes."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import psutil


def stored_episodes(path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def bench(out) -> list[str]:
    return [sys.executable, "-m", "crossagent.cli", "bench", "--agent", "expert", "--suite", "mini", "--trials", "2",
            "--workers", "2", "--out", str(out)]


def test_kill_9_leaves_no_process_and_a_rerun_resumes(tmp_path):
    results = tmp_path / "results.sqlite"
    main = subprocess.Popen(bench(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while stored_episodes(results) < 3:
        assert main.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no episode was stored within 240 s"
        time.sleep(0.2)
    workers = psutil.Process(main.pid).children(recursive=True)
    assert len(workers) >= 2  # the pool's workers (and multiprocessing's resource tracker)
    os.kill(main.pid, signal.SIGKILL)
    main.wait()
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == [], f"left behind: {[(p.pid, p.cmdline()) for p in alive]}"
    kept = stored_episodes(results)
    assert 3 <= kept < 60
    rerun = subprocess.run(bench(tmp_path), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{60 - kept} episodes run (0 raised), {kept} already stored" in rerun.stdout
    assert stored_episodes(results) == 60
