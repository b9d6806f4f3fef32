"""What produced a thing, as data: the settings of a pipeline stage or of an evaluated agent, their
fingerprint, and the settings that changed. One mechanism for every resumable step: a stage's
folder and a stored episode each carry the settings that produced them, and a re-run with other
settings is refused or re-run, naming what changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def plain(value: Any) -> Any:
    """`value` as JSON-able data: dataclasses as dicts, paths as strings, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{type(value).__name__} is not settings data")


def fingerprint(settings: Any) -> str:
    """A short hash of the settings' canonical JSON."""
    text = json.dumps(plain(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def changes(stored: Mapping, wanted: Mapping, prefix: str = "") -> list[str]:
    """Each setting that differs, as `name: stored -> wanted` (nested settings by dotted name)."""
    found = []
    for key in sorted(set(stored) | set(wanted), key=str):
        before, after = stored.get(key, "(unset)"), wanted.get(key, "(unset)")
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            found += changes(before, after, f"{prefix}{key}.")
        elif before != after:
            found.append(f"{prefix}{key}: {before!r} -> {after!r}")
    return found


def directory_hash(path: str | Path) -> str:
    """The content hash of the files directly in `path` (a model checkpoint: weights, config, tokenizer)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).iterdir() if p.is_file()):
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()[:16]
