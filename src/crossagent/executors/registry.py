"""Which executor runs each level: the scripted ones (actions.<level>.execute, planning on the true
state) or learned ones (executors.learned, reading only the view), chosen by one setting. The latent
level has no scripted executor: its codebook's decoder (executors.latent, reading only the view) runs it
whatever the setting, from `checkpoints/latent`.

This is the one place that maps a level to its executor; LevelAgent asks it for every call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossagent.actions import latent
from crossagent.actions.executor import Executor
from crossagent.actions.levels import DECODED_LEVELS, MODULE_OF, UPPER_LEVELS
from crossagent.envs.privileged_state import PrivilegedState

if TYPE_CHECKING:  # loading it imports torch: only when a latent level runs
    from crossagent.executors.latent import LatentExecutor

KINDS = ("scripted", "learned")
# Upper levels with a scripted and a learned executor (raw runs as is: nothing to learn).
LEARNED_LEVELS = tuple(level for level in UPPER_LEVELS if level not in DECODED_LEVELS)
DEFAULT_CHECKPOINTS = Path("runs/executors")
ExecuteFn = Callable[[Any, PrivilegedState, int], Executor]


@dataclass(frozen=True)
class Executors:
    """`kind` scripted or learned; a learned set reads one checkpoint folder per level under `checkpoints`
    (`checkpoints/motion`, ...), as `crossagent executors train` writes them. Any set reads the latent
    level's from `checkpoints/latent` (`crossagent executors train-latent`)."""

    kind: str = "scripted"
    checkpoints: Path = DEFAULT_CHECKPOINTS

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown executors {self.kind!r} (known: {', '.join(KINDS)})")

    @property
    def learned(self) -> bool:
        return self.kind == "learned"

    def execute_fn(self, level: str) -> ExecuteFn:
        if level in DECODED_LEVELS:
            return self.latent().execute
        if not self.learned or level not in LEARNED_LEVELS:
            return MODULE_OF[level].execute
        return _learned(Path(self.checkpoints).resolve() / level, level).execute

    def latent(self) -> LatentExecutor:
        """The latent level's executor, which also encodes chunks into codes (the latent oracle's)."""
        return _latent(Path(self.checkpoints).resolve() / latent.NAME)

    def reads_checkpoint(self, level: str) -> bool:
        """Whether `level` runs from a checkpoint in this set (what its episodes are keyed by)."""
        return level in DECODED_LEVELS or (self.learned and level in LEARNED_LEVELS)

    def agent_name(self, agent: str) -> str:
        """The name episodes are stored under: `oracle:motion` scripted, `oracle:motion+learned` learned."""
        return f"{agent}+{self.kind}" if self.learned else agent


SCRIPTED = Executors()


@lru_cache(maxsize=None)
def _learned(folder: Path, level: str):
    """One loaded policy per folder and process (workers load it once)."""
    import torch

    from crossagent.executors.checkpoint import load_policy
    from crossagent.executors.learned import LearnedExecutor

    # One small forward per step gains nothing from threads (as models/threads.py's default), and workers share cores.
    torch.set_num_threads(1)
    return LearnedExecutor(load_policy(folder, level))


@lru_cache(maxsize=None)
def _latent(folder: Path) -> LatentExecutor:
    """One loaded codebook and decoder per folder and process."""
    import torch

    from crossagent.executors.latent import LatentExecutor
    from crossagent.executors.latent_model import load_latent

    torch.set_num_threads(1)  # as _learned
    return LatentExecutor(load_latent(folder))
