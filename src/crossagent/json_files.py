"""Reading the JSON files a run folder keeps (manifests, stage records, checkpoint state): a damaged
one is named, with what to do, instead of a bare JSONDecodeError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json(path: str | Path, remedy: str = "delete it, or use another folder") -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is damaged (not JSON: {error}); {remedy}") from None
