"""Agents by name, as the command line names them."""

from __future__ import annotations

from collections.abc import Callable

from crossagent.agents.base import Agent
from crossagent.agents.random_agent import RandomAgent


def _expert() -> Agent:
    from crossagent.agents.expert.expert_agent import ExpertAgent

    return ExpertAgent()


AGENTS: dict[str, Callable[[], Agent]] = {
    "expert": _expert,
    "random": RandomAgent,
}


def make_agent(name: str) -> Agent:
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r} (known: {', '.join(sorted(AGENTS))})")
    return AGENTS[name]()
