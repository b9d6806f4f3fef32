"""How many CPU threads torch uses in a command that runs a model (`--threads`).

torch starts one intra-op thread per core. The tiny model's matrices are too small to gain
from threads, and on a shared machine the extra threads only contend for the cores, so
commands default to one thread per process (measured: benchmarks/results/thread_speed.md).
A larger model on a free machine may gain from more: pass `--threads`.
"""

from __future__ import annotations

import argparse

import torch

from crossagent.arguments import int_in_range

DEFAULT_THREADS = 1


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int_in_range(1), default=DEFAULT_THREADS,
                        help=f"torch CPU threads, intra- and inter-op (default: {DEFAULT_THREADS}; "
                             "see benchmarks/results/thread_speed.md)")


def use_threads(count: int) -> None:
    """Set torch's intra-op and inter-op thread counts; call it before the model runs."""
    torch.set_num_threads(count)
    # Inter-op threads can be set only once per process, before torch's first inter-op work.
    if torch.get_num_interop_threads() != count:
        torch.set_num_interop_threads(count)
