"""Agents by name, as the command line names them."""

from __future__ import annotations

from collections.abc import Callable

from crossagent.agents.base import Agent
from crossagent.agents.random_agent import RandomAgent


def _expert() -> Agent:
    from crossagent.agents.expert import ExpertAgent

    return ExpertAgent()


AGENTS: dict[str, Callable[[], Agent]] = {
    "expert": _expert,
    "random": RandomAgent,
}


def _oracle(level: str) -> Agent:
    from crossagent.agents.level_agent import LevelAgent
    from crossagent.agents.oracle import OraclePolicy

    return LevelAgent(OraclePolicy(level), mode="dynamic")


def require_known_agent(name: str) -> None:
    """Raise ValueError unless `name` is `expert`, `random`, or `oracle:LEVEL`."""
    from crossagent.actions.levels import LEVELS

    kind, _, level = name.partition(":")
    if name in AGENTS or (kind == "oracle" and level in LEVELS):
        return
    known = [*sorted(AGENTS), *(f"oracle:{level}" for level in LEVELS)]
    raise ValueError(f"unknown agent {name!r} (known: {', '.join(known)})")


def make_agent(name: str) -> Agent:
    require_known_agent(name)
    kind, _, level = name.partition(":")
    return _oracle(level) if kind == "oracle" else AGENTS[name]()
