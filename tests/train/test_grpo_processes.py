"""GRPO under `accelerate launch` with two CPU processes (gloo): one iteration, and both processes end in step.

`accelerate launch --cpu --num_processes 2` starts a single process (several CPU processes need mpirun),
so the test launches as for GPUs (`--multi_gpu`: torchrun, one process each) and the trainer sets up gloo
on this GPU-less machine (train/grpo.py, make_accelerator).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from contextlib import suppress
from dataclasses import asdict
from pathlib import Path

import psutil
import pytest

from crossagent.models.loading import load_model
from crossagent.train.grpo_log import LOG_CSV

from .conftest import save_demonstrations, tiny_config
from .grpo_process import weights_digest

PROCESSES = 2
LAUNCH_TIMEOUT = 300  # seconds; one launch took ~17 s on a 2-core machine shared with another job
PROCESS_SCRIPT = Path(__file__).with_name("grpo_process.py")
TIMINGS = {"rollout_seconds", "update_seconds", "env_steps_per_second", "generated_tokens_per_second"}


def launch_command(*script_args: Path) -> list[str]:
    # Every launch setting on the command line, so that no accelerate config file adds its own.
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(PROCESSES),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
            str(PROCESS_SCRIPT), *map(str, script_args)]


def launch_env(tmp_path: Path) -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    env.pop("ACCELERATE_USE_CPU", None)  # the trainer must choose the CPU backend itself
    return env


def kill_tree(process: subprocess.Popen) -> None:
    """The launcher and every process under it: torchrun starts each worker in a session of its own, so
    killing the launcher's process group would leave the workers waiting on each other."""
    with suppress(psutil.NoSuchProcess):
        launcher = psutil.Process(process.pid)
        tree = [launcher, *launcher.children(recursive=True)]
        for member in tree:
            with suppress(psutil.NoSuchProcess):
                member.kill()
        psutil.wait_procs(tree, timeout=10)
    process.wait()


def run_launch(command: list[str], env: dict[str, str], log: Path) -> int:
    """The launch's exit status; on a timeout (or any interruption) nothing it started is left running."""
    with log.open("w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return process.wait(timeout=LAUNCH_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the launch did not end within {LAUNCH_TIMEOUT} s:\n{log.read_text()[-3000:]}")
        finally:
            if process.poll() is None:
                kill_tree(process)


@pytest.mark.parametrize("demonstrations", [0, 2], ids=["grpo", "with-demonstrations"])
def test_two_processes_train_one_iteration_and_end_with_the_same_weights(tiny_path, tmp_path, demonstrations):
    """With demonstrations, each process draws its own examples: only the all-reduce keeps the weights equal."""
    dataset = save_demonstrations(tmp_path / "mix") if demonstrations else None
    config = tiny_config(tiny_path, tmp_path / "run", updates=1, demonstrations_per_step=demonstrations,
                         demonstration_dataset=str(dataset) if dataset else None)
    config_json, reports, log = tmp_path / "config.json", tmp_path / "reports", tmp_path / "launch.log"
    config_json.write_text(json.dumps(asdict(config)))
    reports.mkdir()

    status = run_launch(launch_command(config_json, reports), launch_env(tmp_path), log)
    assert status == 0, log.read_text()[-3000:]

    ranks = [json.loads((reports / f"rank-{rank}.json").read_text()) for rank in range(PROCESSES)]
    assert [report["processes"] for report in ranks] == [PROCESSES] * PROCESSES  # one run, not two alone
    trained = {report["weights"] for report in ranks}
    assert len(trained) == 1  # DDP kept the processes in step, though each trained on its own turns
    assert trained == {weights_digest(load_model(Path(config.output_dir) / "final")[0])}  # what rank 0 saved
    assert trained != {weights_digest(load_model(tiny_path)[0])}  # the iteration changed the weights
    histories = [[{k: v for k, v in m.items() if k not in TIMINGS} for m in r["history"]] for r in ranks]
    assert histories[0] == histories[1] and histories[0][0]["episodes"] == 4  # every process saw every group
    with (Path(config.output_dir) / LOG_CSV).open() as file:
        rows = list(csv.DictReader(file))
    assert [row["iteration"] for row in rows] == ["1"]  # logged once, by the main process
    assert int(rows[0]["demonstrations"]) == PROCESSES * demonstrations  # one optimizer step, each process its own
