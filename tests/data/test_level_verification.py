"""Verified levels on hand-built states: episodes whose actions come from an executor, replayed and checked
level by level."""

import dataclasses

import pytest

from crossagent.actions import grounding, motion, skill
from crossagent.data.level_verification import ReplayMismatch, verify_episode
from crossagent.data.recording import record_episode
from crossagent.envs.crafter_env import ACTION_NAMES, CrafterEnv
from crossagent.envs.start_state import Block, Mob, StartState
from crossagent.envs.view_geometry import point_of_cell
from crossagent.tasks.predicates import Achieve
from crossagent.tasks.task import Task

IMAGE = 64
SPAWN = (32, 32)
GRASS = tuple(Block("grass", dx, dy) for dx in range(-4, 5) for dy in range(-3, 4) if (dx, dy) != (0, 0))


def task(*extra_blocks, success=Achieve("collect_wood"), budget=100, **start) -> Task:
    start = StartState(blocks=GRASS + extra_blocks, clear_hostiles_within=64, daylight="day", **start)
    return Task("test.hand_built", "embodied", "Do it.", ("",), 1, start, budget, success)


class ExecutorAgent:
    """Plays what an executor yields, started on the episode's first state (the recorded "expert")."""

    name = "executor"
    uses_privileged_state = True
    needs_image = False
    needs_text = False

    def __init__(self, start):
        self.start = start  # state -> executor
        self._executor = None

    def reset(self, task, seed):
        self._executor = None

    def act(self, observation, state):
        if self._executor is None:
            self._executor = self.start(state)
        try:
            return next(self._executor)
        except StopIteration:
            return ACTION_NAMES.index("noop")


def recorded(the_task: Task, start):
    env = CrafterEnv(image_size=IMAGE, observe_image=True, observe_text=False)
    return record_episode(env, ExecutorAgent(start), the_task, 0).steps


def test_a_step_whose_skill_reaches_the_next_event_is_skill():
    the_task = task(Block("tree", 3, 0))
    steps = recorded(the_task, lambda state: skill.execute(skill.Skill("collect wood"), state, IMAGE))
    assert steps[-1].events == ("collect_wood",) and len(steps) == 3
    assert verify_episode(the_task, 0, steps, IMAGE) == ["skill"] * 3


def test_a_step_whose_skill_misses_but_whose_grounding_reaches_it_is_grounding():
    # A weak player's `eat cow` skill retreats from the cow first (behaviours.defeat keeps away at low
    # health); pointed at the cow, the grounding executor goes straight for it, well within the budget.
    the_task = task(Block("tree", -4, -3), success=Achieve("eat_cow"), inventory={"health": 1},
                    mobs=(Mob("cow", 2, 0),))
    cow = point_of_cell(SPAWN, (34, 32), IMAGE)
    steps = recorded(the_task, lambda state: grounding.execute(grounding.Grounding("eat", cow, "cow"), state, IMAGE))
    assert steps[-1].events == ("eat_cow",)
    levels = verify_episode(the_task, 0, steps, IMAGE, budget=len(steps) + 5)
    assert levels[0] == "grounding"
    assert verify_episode(the_task, 0, steps, IMAGE)[0] == "skill"  # given the whole call, the skill gets there


def test_navigation_to_a_point_falls_back_to_motion_and_a_single_step_to_raw():
    # No event ahead: the subgoal is the cell where the expert ends, which exploring does not stop on.
    walk = ["move_right"] * 3 + ["move_down"] * 3

    def walker(state):
        for action in walk:
            yield ACTION_NAMES.index(action)

    the_task = task(success=Achieve("collect_diamond"), budget=len(walk))
    steps = recorded(the_task, walker)
    assert [s.action for s in steps] == walk and steps[-1].arrived == (35, 35)
    assert verify_episode(the_task, 0, steps, IMAGE) == ["motion", "motion", "raw", "motion", "motion", "raw"]


def test_the_labeller_is_deterministic():
    the_task = task(Block("tree", 3, 1), Block("tree", -2, -2))
    steps = recorded(the_task, lambda state: skill.execute(skill.Skill("collect wood"), state, IMAGE))
    assert verify_episode(the_task, 0, steps, IMAGE) == verify_episode(the_task, 0, steps, IMAGE)


def test_a_recording_that_does_not_replay_is_refused():
    the_task = task(Block("tree", 3, 0))
    steps = recorded(the_task, lambda state: motion.execute(motion.Motion("move_right", 2), state, IMAGE))
    moved = [dataclasses.replace(steps[0], position=(0, 0))] + list(steps[1:])
    with pytest.raises(ReplayMismatch, match="step 0"):
        verify_episode(the_task, 0, moved, IMAGE)
