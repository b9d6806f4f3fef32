"""Level `motion` (`Motion:`): an object-agnostic movement with a repeat count, e.g. `Motion: move left 3`.

Every primitive action has a motion phrase ("move left", "do", "wait", "sleep", "place table",
"make wood pickaxe"); the count repeats it. A move that is blocked turns the player: as a
single motion that is a turn (done), inside a longer run it ends the motion (failed: blocked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crossagent.actions import lark
from crossagent.actions.executor import Executor, done, failed
from crossagent.actions.parse_error import ParseError
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.privileged_state import PrivilegedState

NAME = "motion"
TAG = "Motion:"
MAX_REPEAT = 20
ACTION_OF_PHRASE = {phrase: name for name, phrase in VOCABULARY.motion.phrases.items()}
_COUNTED = re.compile(r"^(?P<phrase>[a-z _\-]+?)\s*(?:(?:x|×)?\s*\(?(?P<count>\d+)\)?(?:\s*times?)?)?$")


@dataclass(frozen=True)
class Motion:
    action: str  # the primitive action's env name
    count: int = 1


def parse(body: str) -> Motion | ParseError:
    """The text after `Motion:`."""
    text = re.sub(r"\s+", " ", body.strip().lower().rstrip("."))
    match = _COUNTED.match(text)
    if not match:
        return ParseError(f"not a motion phrase with an optional count: {body.strip()!r}", body)
    phrase = match["phrase"].strip().replace("_", " ")
    phrase = VOCABULARY.motion.aliases.get(phrase, phrase)
    if phrase not in ACTION_OF_PHRASE:
        return ParseError(f"unknown motion {phrase!r} (known: {', '.join(VOCABULARY.motion.phrases.values())})", body)
    count = int(match["count"]) if match["count"] else 1
    if not 1 <= count <= MAX_REPEAT:
        return ParseError(f"motion count {count} is not in 1..{MAX_REPEAT}", body)
    return Motion(ACTION_OF_PHRASE[phrase], count)


def to_text(motion: Motion) -> str:
    phrase = VOCABULARY.motion.phrases[motion.action]
    return f"{TAG} {phrase}" + (f" {motion.count}" if motion.count > 1 else "")


def grammar() -> str:
    """The lines `to_text` writes, as a Lark expression (constrained decoding): a count of 1 is not written."""
    return (f"{lark.literal(TAG + ' ')} {lark.one_of(VOCABULARY.motion.phrases.values())} "
            f"(\" \" {lark.integers(2, MAX_REPEAT)})?")


def execute(motion: Motion, state: PrivilegedState, image_size: int) -> Executor:
    index = ACTION_NAMES.index(motion.action)
    for step in range(motion.count):
        before = state.position
        yield index
        if motion.action.startswith("move_") and state.position == before:
            blocker = state.object_at(state.facing_cell) or state.material(state.facing_cell)
            what = type(blocker).__name__.lower() if not isinstance(blocker, str) else blocker
            if motion.count == 1:
                return done(f"turned to face {what}")
            return failed(f"blocked by {what} after {step} of {motion.count} steps")
    return done()
