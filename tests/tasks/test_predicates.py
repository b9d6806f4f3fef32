"""Success predicates on hand-built states."""

import pytest

from crossagent.envs.crafter_env import ACTION_NAMES, CrafterEnv
from crossagent.envs.start_state import Block, Mob, StartState
from crossagent.tasks.predicates import Achieve, AllOf, Gain, Reach, Survive, predicate_from_dict

DO = ACTION_NAMES.index("do")
LEFT, RIGHT = ACTION_NAMES.index("move_left"), ACTION_NAMES.index("move_right")


def started(start: StartState):
    env = CrafterEnv(observe_image=False, observe_text=False)
    env.reset(seed=0, options={"start": start})
    state = env.privileged()
    return env, state, state.progress()


def test_gain_counts_from_the_start_inventory_not_from_zero():
    env, state, start = started(StartState(inventory={"wood": 3}, blocks=(Block("tree", 1, 0),)))
    assert not Gain("wood", 1).check(start, state.progress(), state)
    env.step(RIGHT)  # the tree blocks the move: the player turns to face it
    env.step(DO)
    now = state.progress()
    assert now.inventory["wood"] == 4
    assert Gain("wood", 1).check(start, now, state)
    assert not Gain("wood", 2).check(start, now, state)


def test_achieve_and_defeat_counts():
    env, state, start = started(StartState(inventory={"iron_sword": 1}, mobs=(Mob("cow", 1, 0),), daylight="day"))
    env.step(RIGHT)
    assert not Achieve("eat_cow").check(start, state.progress(), state)
    for _ in range(3):
        if state.object_at(state.facing_cell) is None:
            break
        env.step(DO)
    assert Achieve("eat_cow").check(start, state.progress(), state)
    assert not Achieve("eat_cow", 2).check(start, state.progress(), state)
    assert not Achieve("defeat_zombie").check(start, state.progress(), state)


def test_reach_needs_a_4_neighbour_of_the_material():
    env, state, start = started(StartState(blocks=(Block("diamond", 2, 0),)))
    assert not Reach("diamond").check(start, state.progress(), state)
    env.step(RIGHT)
    assert Reach("diamond").check(start, state.progress(), state)


def test_survive_needs_the_steps_and_a_living_player():
    env, state, start = started(StartState())
    for _ in range(4):
        env.step(0)
    assert not Survive(5).check(start, state.progress(), state)
    env.step(0)
    assert Survive(5).check(start, state.progress(), state)
    state.player.health = 0
    assert not Survive(5).check(start, state.progress(), state)


def test_all_of_needs_every_part():
    env, state, start = started(StartState(inventory={"wood": 1}, blocks=(Block("water", 1, 0),)))
    both = AllOf((Reach("water"), Gain("wood", 1)))
    assert Reach("water").check(start, state.progress(), state)
    assert not both.check(start, state.progress(), state)


@pytest.mark.parametrize("data, message", [
    ({"kind": "gain", "item": "gold"}, "success.item: 'gold' is not one of"),
    ({"kind": "gain"}, "success.item: missing"),
    ({"kind": "achieve", "name": "make_wood_pickaxe", "count": 0}, "success.count: 0 is not a positive integer"),
    ({"kind": "teleport"}, "success.kind: unknown predicate kind 'teleport'"),
    ({"kind": "all", "of": [{"kind": "reach", "material": "cheese"}]}, "success.of[0].material: 'cheese'"),
    ({"item": "wood"}, "expected an object with a 'kind' field"),
])
def test_bad_predicates_name_the_field(data, message):
    with pytest.raises(ValueError) as error:
        predicate_from_dict(data)
    assert message in str(error.value)


def test_predicates_round_trip_through_dicts():
    for predicate in (Gain("stone", 2), Achieve("defeat_zombie", 3), Reach("water"), Survive(100),
                      AllOf((Gain("wood", 1), Reach("table")))):
        assert predicate_from_dict(predicate.to_dict()) == predicate
