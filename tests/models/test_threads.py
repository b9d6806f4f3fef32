"""--threads: one helper sets torch's intra- and inter-op threads in the commands that run a model."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from crossagent.bench import model_eval
from crossagent.models import serve

SRC = Path(__file__).resolve().parents[2] / "src"


def test_use_threads_sets_intra_and_interop_threads():
    # A fresh process: inter-op threads can be set once per process, and the test session has set its own.
    code = "import torch; from crossagent.models.threads import use_threads; use_threads(3); " \
           "print(torch.get_num_threads(), torch.get_num_interop_threads())"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(SRC)}).stdout
    assert output.split() == ["3", "3"]


def test_serve_and_eval_model_take_threads_with_default_1():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    serve.register(commands)
    model_eval.register(commands)
    assert parser.parse_args(["serve", "--model", "m"]).threads == 1
    assert parser.parse_args(["eval-model", "--model", "m", "--out", "o", "--threads", "2"]).threads == 2
