"""Every learned executor keeps the executor interface (actions/executor.py) and reads only the text view."""

from __future__ import annotations

import pytest

from crossagent.actions import grounding, motion, skill
from crossagent.actions.executor import Stop, with_budget
from crossagent.envs.crafter_env import ACTION_NAMES, CrafterEnv
from crossagent.envs.text_view import render_text
from crossagent.envs.view_geometry import point_of_cell
from crossagent.executors import learned
from crossagent.executors.learned import STEP_CAP, LearnedExecutor, TargetTracker, move_of
from crossagent.executors.observation import parse_view
from tests.executors.conftest import small_policy

ACTIONS = {
    "motion": motion.Motion("move_left", 3),
    "grounding": grounding.Grounding("collect", point_of_cell((0, 0), (1, 0), 64), "tree"),
    "skill": skill.Skill("collect wood"),
}


def game():
    env = CrafterEnv(image_size=64, observe_image=False, observe_text=False)
    env.reset(seed=3)
    return env, env.privileged()


def drive(executor, env, limit: int = 500) -> tuple[list[int], Stop]:
    actions = []
    while True:
        try:
            action = next(executor)
        except StopIteration as stop:
            return actions, stop.value
        actions.append(action)
        env.step(action)
        assert len(actions) < limit, "the executor never stopped"


@pytest.mark.parametrize("level", sorted(ACTIONS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_yields_valid_actions_and_returns_a_stop(level, seed):
    env, state = game()
    actions, stop = drive(LearnedExecutor(small_policy(level, seed)).execute(ACTIONS[level], state, 64), env)
    assert all(0 <= action < len(ACTION_NAMES) for action in actions)
    assert isinstance(stop, Stop) and stop.kind in ("done", "budget")
    assert len(actions) <= STEP_CAP[level]


@pytest.mark.parametrize("level", sorted(ACTIONS))
def test_respects_the_callers_budget(level):
    env, state = game()
    executor = with_budget(LearnedExecutor(small_policy(level)).execute(ACTIONS[level], state, 64), 2)
    actions, stop = drive(executor, env)
    assert len(actions) <= 2 and stop.kind in ("done", "budget")


class Sealed:
    """A state that any read fails on: the executor may only hand it to render_text."""

    def __getattribute__(self, name):
        raise AssertionError(f"the learned executor read state.{name}")


def sealed_views(monkeypatch, module, state) -> tuple[Sealed, list]:
    """A Sealed state, and the list of views `module.render_text` is asked for (each must be of that state;
    it renders the real `state` instead)."""
    sealed, calls = Sealed(), []

    def view_of(seen):
        calls.append(seen)
        assert seen is sealed
        return render_text(state)

    monkeypatch.setattr(module, "render_text", view_of)
    return sealed, calls


@pytest.mark.parametrize("level", sorted(ACTIONS))
def test_reads_nothing_but_the_text_view(level, monkeypatch):
    env, state = game()
    sealed, calls = sealed_views(monkeypatch, learned, state)
    actions, _ = drive(LearnedExecutor(small_policy(level)).execute(ACTIONS[level], sealed, 64), env)
    assert len(calls) == len(actions) > 0  # one view per step


def test_a_move_is_tracked_only_onto_a_walkable_cell():
    env, state = game()
    view = parse_view(render_text(state))
    left = ACTION_NAMES.index("move_left")
    ahead = view.symbol(3, 3)
    assert (move_of(left, view) == (-1, 0)) == (ahead in {".", ":", "_", "L"})
    assert move_of(ACTION_NAMES.index("do"), view) is None
    tracker = TargetTracker((-3, 0), "tree")
    tracker.acted(left, view)
    assert tracker.offset == ((-2, 0) if move_of(left, view) else (-3, 0))
