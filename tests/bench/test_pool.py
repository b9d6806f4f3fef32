"""The one process pool: results from spawned workers, and workers that exit when the main process dies."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from crossagent.bench.pool import run_jobs

ROOT = Path(__file__).resolve().parents[2]


class Doubler:
    def __init__(self, offset: int):
        self.offset = offset

    def run(self, job: int) -> int:
        return 2 * job + self.offset


class Sleeper:
    """A worker whose job outlives the main process: it sleeps far longer than the test waits."""

    def run(self, job: int) -> int:
        time.sleep(120)
        return job


def test_jobs_run_in_workers_or_in_this_process():
    assert sorted(run_jobs([1, 2, 3], Doubler, (1,), workers=2)) == [3, 5, 7]
    assert list(run_jobs([1, 2, 3], Doubler, (0,), workers=1)) == [2, 4, 6]
    with pytest.raises(ValueError, match="workers must be at least 1"):
        list(run_jobs([1], Doubler, (0,), workers=0))


def test_busy_workers_exit_within_seconds_of_a_kill_9_of_the_main_process():
    main = subprocess.Popen([sys.executable, "-c", "from crossagent.bench.pool import run_jobs\n"
                             "from tests.bench.test_pool import Sleeper\n"
                             "list(run_jobs([1, 2], Sleeper, (), workers=2))"], cwd=ROOT)
    deadline = time.monotonic() + 60
    while len(workers := [p for p in psutil.Process(main.pid).children() if "spawn" in " ".join(p.cmdline())]) < 2:
        assert time.monotonic() < deadline and main.poll() is None, "the workers did not start"
        time.sleep(0.2)
    time.sleep(1)  # both are in their 120 s job
    workers = psutil.Process(main.pid).children(recursive=True)  # multiprocessing's resource tracker too
    os.kill(main.pid, signal.SIGKILL)
    main.wait()
    gone, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == [], f"still running 5 s after the main process died: {[p.pid for p in alive]}"
