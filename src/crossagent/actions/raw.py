"""Level `raw` (`Action:`): one Crafter primitive action by name; it runs as is, one step."""

from __future__ import annotations

import re
from dataclasses import dataclass

from crossagent.actions import lark
from crossagent.actions.executor import Executor, done
from crossagent.actions.parse_error import ParseError
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.privileged_state import PrivilegedState

NAME = "raw"
TAG = "Action:"
# Models may write "move left" or "Move_Left"; the canonical form is the env's name.
_SEPARATORS = re.compile(r"[\s\-]+")


@dataclass(frozen=True)
class RawAction:
    name: str

    @property
    def index(self) -> int:
        return ACTION_NAMES.index(self.name)


def parse(body: str) -> RawAction | ParseError:
    """The text after `Action:`."""
    name = _SEPARATORS.sub("_", body.strip().lower()).strip("_.")
    if name in ACTION_NAMES:
        return RawAction(name)
    return ParseError(f"unknown primitive action {body.strip()!r} (known: {', '.join(ACTION_NAMES)})", body)


def to_text(action: RawAction) -> str:
    return f"{TAG} {action.name}"


def grammar() -> str:
    """The lines `to_text` writes, as a Lark expression (constrained decoding)."""
    return f"{lark.literal(TAG + ' ')} {lark.one_of(ACTION_NAMES)}"


def execute(action: RawAction, state: PrivilegedState, image_size: int) -> Executor:
    yield action.index
    return done()
