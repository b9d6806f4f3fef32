"""Level `skill` (`Skill:`): a short subgoal sentence from a fixed set (the vocabulary's skills).

Each skill composes the expert's behaviours until done, failed or out of budget. A skill does
its own subgoal only: `make stone pickaxe` fails with the reason "needs stone" instead of
mining; choosing the order of skills is the policy's job.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from crossagent.actions import behaviours as b
from crossagent.actions import lark
from crossagent.actions.executor import Executor
from crossagent.actions.parse_error import ParseError
from crossagent.actions.pathing import shortest_path
from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.privileged_state import PrivilegedState

NAME = "skill"
TAG = "Skill:"


@dataclass(frozen=True)
class Skill:
    sentence: str


def parse(body: str) -> Skill | ParseError:
    """The text after `Skill:`."""
    skills = VOCABULARY.skill
    words = re.sub(r"[^a-z ]", " ", body.lower()).split()
    words = [skills.word_aliases.get(word, word) for word in words]
    sentence = " ".join(word for word in words if word)
    sentence = skills.sentence_aliases.get(sentence, sentence)
    if sentence not in skills.sentences:
        return ParseError(f"unknown skill {body.strip()!r} (known: {', '.join(skills.sentences)})", body)
    return Skill(sentence)


def to_text(skill: Skill) -> str:
    return f"{TAG} {skill.sentence}"


def grammar() -> str:
    """The lines `to_text` writes, as a Lark expression (constrained decoding)."""
    return f"{lark.literal(TAG + ' ')} {lark.one_of(VOCABULARY.skill.sentences)}"


def execute(skill: Skill, state: PrivilegedState, image_size: int) -> Executor:
    return (yield from _behaviour(skill.sentence)(state))


def _behaviour(sentence: str) -> Callable[[PrivilegedState], Executor]:
    verb, _, what = sentence.partition(" ")
    if verb == "collect":
        return lambda state: b.collect(state, VOCABULARY.skill.sources[what])
    if sentence == "drink water":
        return lambda state: b.collect(state, "water")
    if sentence == "eat cow":
        return lambda state: b.defeat(state, "cow", wait_steps=10)
    if verb == "defeat":
        return lambda state: b.defeat(state, what, wait_steps=10)
    if sentence == "place furnace":
        return _place_furnace
    if verb == "place":
        return lambda state: b.place(state, what)
    if verb == "make":
        return lambda state: b.make(state, what.replace(" ", "_"))
    if sentence == "sleep":
        return b.sleep_until_rested
    return b.explore


def _place_furnace(state: PrivilegedState) -> Executor:
    """A furnace is only useful next to a table: go to one first when there is one in reach."""
    if shortest_path(state, lambda c: b.stations_near(state, c, ["table"]), max_cost=b.STATION_SEARCH_COST):
        outcome = yield from b.go_to(state, lambda c: b.stations_near(state, c, ["table"]), "the table")
        if not outcome.ok:
            return outcome
    return (yield from b.place(state, "furnace"))
