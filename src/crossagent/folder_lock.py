"""One writer per folder: every command that writes a folder holds its lock for the run.

The lock is an OS file lock (fcntl.flock) on FOLDER/.lock, so it ends with the process, even a
killed one; the file names the holder (pid, command) for the message a second writer gets. A
process and the processes it starts (pipeline stages run in spawned workers) share the locks it
holds: they are listed in the environment, which children inherit. Under a multi-process launch
(accelerate, torchrun: RANK is set) rank 0 holds the folder for every rank.
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOCK_FILE = ".lock"
HELD = "CROSSAGENT_HELD_FOLDERS"  # os.pathsep-separated folders this process tree holds


class FolderBusy(RuntimeError):
    """Another run is writing the folder."""


def _held() -> list[str]:
    return [path for path in os.environ.get(HELD, "").split(os.pathsep) if path]


@contextmanager
def hold_folder(folder: str | Path) -> Iterator[Path]:
    """Create `folder` if needed and hold it for writing; raise FolderBusy naming the holder if another
    process does."""
    folder = Path(folder).resolve()
    if str(folder) in _held() or os.environ.get("RANK", "0") != "0":
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    with path.open("a+") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            raise FolderBusy(f"{folder} is being written by {holder}; wait for that run to end, or use another "
                             f"folder") from None
        file.seek(0)
        file.truncate()
        file.write(json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv)[:200],
                               "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        file.flush()
        previous = os.environ.get(HELD)
        os.environ[HELD] = os.pathsep.join([*_held(), str(folder)])
        try:
            yield folder
        finally:
            if previous is None:
                os.environ.pop(HELD, None)
            else:
                os.environ[HELD] = previous
            file.truncate(0)
            fcntl.flock(file, fcntl.LOCK_UN)


def writes_folder(folder_of: Callable[[dict[str, Any]], str | Path]) -> Callable:
    """Decorate a function that writes a folder: it holds the folder for the call. `folder_of` gets the
    call's arguments by name (defaults applied) and returns the folder."""
    def decorate(function: Callable) -> Callable:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def holding(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            with hold_folder(folder_of(bound.arguments)):
                return function(*args, **kwargs)
        return holding
    return decorate
