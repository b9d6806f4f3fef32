"""Agents by name, as the command line names them."""

from __future__ import annotations

from collections.abc import Callable

from crossagent.agents.base import Agent
from crossagent.agents.random_agent import RandomAgent
from crossagent.executors.registry import SCRIPTED, Executors


def _expert() -> Agent:
    from crossagent.agents.expert import ExpertAgent

    return ExpertAgent()


AGENTS: dict[str, Callable[[], Agent]] = {
    "expert": _expert,
    "random": RandomAgent,
}


def _oracle(level: str, executors: Executors) -> Agent:
    from crossagent.actions.levels import DECODED_LEVELS
    from crossagent.agents.level_agent import LevelAgent
    from crossagent.agents.oracle import OraclePolicy

    encoder = executors.latent() if level in DECODED_LEVELS else None  # codes come from the executors' codebook
    return LevelAgent(OraclePolicy(level, encoder=encoder), mode="dynamic", executors=executors)


def require_known_agent(name: str) -> None:
    """Raise ValueError unless `name` is `expert`, `random`, or `oracle:LEVEL`."""
    from crossagent.actions.levels import LEVELS

    kind, _, level = name.partition(":")
    if name in AGENTS or (kind == "oracle" and level in LEVELS):
        return
    known = [*sorted(AGENTS), *(f"oracle:{level}" for level in LEVELS)]
    raise ValueError(f"unknown agent {name!r} (known: {', '.join(known)})")


def make_agent(name: str, executors: Executors = SCRIPTED) -> Agent:
    """`executors` run an oracle's replies; the other agents run no executor."""
    require_known_agent(name)
    kind, _, level = name.partition(":")
    if kind == "oracle":
        return _oracle(level, executors)
    if executors.learned:
        raise ValueError(f"agent {name!r} runs no executors; --executors {executors.kind} is for oracle:LEVEL agents")
    return AGENTS[name]()
