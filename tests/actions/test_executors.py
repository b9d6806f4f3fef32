"""Executors' stop reasons on hand-built states."""

import pytest

from crossagent.actions import grounding, motion, raw, skill
from crossagent.actions.executor import Stop, with_budget
from crossagent.envs.crafter_env import CrafterEnv
from crossagent.envs.start_state import Block, Mob, StartState
from crossagent.envs.view_geometry import cell_at_point, point_of_cell

IMAGE = 64


def run(module, action, start: StartState, limit: int = 300):
    env = CrafterEnv(image_size=IMAGE, observe_image=False, observe_text=False)
    env.reset(seed=1, options={"start": start})
    state = env.privileged()
    executor = module.execute(action, state, IMAGE)
    steps = 0
    while True:
        try:
            env.step(next(executor))
        except StopIteration as stop:
            return stop.value, state, steps
        steps += 1
        assert steps < limit, "executor did not stop"


def point(dx: int, dy: int) -> tuple[int, int]:
    """The point showing the cell (dx, dy) from the player's spawn."""
    return point_of_cell((32, 32), (32 + dx, 32 + dy), IMAGE)


OPEN = StartState(blocks=tuple(Block("grass", dx, dy) for dx in range(-4, 5) for dy in range(-3, 4) if (dx, dy) != (0, 0)),
                  clear_hostiles_within=64, daylight="day")


def with_blocks(*blocks, **kwargs) -> StartState:
    return StartState(blocks=OPEN.blocks + blocks, clear_hostiles_within=64, daylight="day", **kwargs)


@pytest.mark.parametrize("size", [64, 90, 256, 600])
def test_points_and_cells_round_trip_on_any_image_size(size):
    player = (10, 20)
    for dx in range(-4, 5):
        for dy in range(-3, 4):
            cell = (10 + dx, 20 + dy)
            assert cell_at_point(player, point_of_cell(player, cell, size), size) == cell
    assert point_of_cell(player, (15, 20), size) is None
    assert cell_at_point(player, (500, 950), size) is None  # the inventory bar


def test_raw_runs_one_step():
    stop, state, steps = run(raw, raw.RawAction("move_right"), OPEN)
    assert stop == Stop("done", "done") and steps == 1 and state.position == (33, 32)


def test_motion_repeats_turns_and_reports_blocking():
    stop, state, steps = run(motion, motion.Motion("move_right", 3), OPEN)
    assert stop.ok and steps == 3 and state.position == (35, 32)
    stop, state, _ = run(motion, motion.Motion("move_right", 1), with_blocks(Block("tree", 1, 0)))
    assert stop == Stop("done", "turned to face tree") and state.position == (32, 32)
    stop, state, steps = run(motion, motion.Motion("move_right", 3), with_blocks(Block("stone", 2, 0)))
    assert stop == Stop("failed", "blocked by stone after 1 of 3 steps") and state.position == (33, 32)


def test_grounding_collects_what_the_point_shows():
    stop, state, _ = run(grounding, grounding.Grounding("collect", point(3, -2), "tree"), with_blocks(Block("tree", 3, -2)))
    assert stop == Stop("done", "collected wood") and state.inventory["wood"] == 1


def test_grounding_rejects_points_that_show_nothing_for_the_verb():
    stop, _, steps = run(grounding, grounding.Grounding("attack", point(2, 1)), OPEN)
    assert stop == Stop("failed", "the point shows grass, nothing to attack") and steps == 0
    stop, _, _ = run(grounding, grounding.Grounding("drink", point(-2, 0)), with_blocks(Block("stone", -2, 0)))
    assert stop == Stop("failed", "the point shows stone, not water")
    stop, _, _ = run(grounding, grounding.Grounding("collect", point(2, 0)), with_blocks(Block("iron", 2, 0)))
    assert stop == Stop("failed", "collecting iron needs stone_pickaxe")
    stop, _, _ = run(grounding, grounding.Grounding("collect", (500, 950)), OPEN)
    assert "shows no world cell" in stop.reason and stop.kind == "failed"


def test_grounding_attacks_a_moving_target_until_it_dies():
    start = StartState(
        blocks=OPEN.blocks, mobs=(Mob("zombie", 3, 1),), inventory={"iron_sword": 1}, daylight="dusk",
        clear_hostiles_within=64)
    stop, state, _ = run(grounding, grounding.Grounding("attack", point(3, 1), "zombie"), start)
    assert stop == Stop("done", "defeated the zombie") and state.achievements["defeat_zombie"] == 1


def test_grounding_places_on_a_walkable_cell_and_makes_at_a_table():
    stop, state, _ = run(grounding, grounding.Grounding("place table", point(2, 2)), with_blocks(inventory={"wood": 3}))
    assert stop == Stop("done", "placed table") and state.material((34, 34)) == "table"
    stop, state, _ = run(grounding, grounding.Grounding("make wood pickaxe", point(-3, 0)),
                         with_blocks(Block("table", -3, 0), inventory={"wood": 1}))
    assert stop.ok and state.inventory["wood_pickaxe"] == 1
    stop, _, _ = run(grounding, grounding.Grounding("make wood pickaxe", point(-3, 0)), with_blocks(Block("table", -3, 0)))
    assert stop == Stop("failed", "making wood_pickaxe needs wood")


def test_skills_do_their_own_subgoal_and_name_what_is_missing():
    stop, state, _ = run(skill, skill.Skill("collect wood"), with_blocks(Block("tree", 4, 3)))
    assert stop.ok and state.inventory["wood"] == 1
    stop, _, steps = run(skill, skill.Skill("place table"), OPEN)
    assert stop == Stop("failed", "placing table needs wood") and steps == 0
    stop, _, _ = run(skill, skill.Skill("collect stone"), with_blocks(Block("stone", 2, 0)))
    assert stop == Stop("failed", "collecting stone needs wood_pickaxe")


def test_with_budget_stops_a_long_executor():
    env = CrafterEnv(observe_image=False, observe_text=False)
    env.reset(seed=1, options={"start": OPEN})
    executor = with_budget(motion.execute(motion.Motion("noop", 10), env.privileged(), IMAGE), 4)
    actions = []
    with pytest.raises(StopIteration) as stop:
        while True:
            actions.append(next(executor))
    assert len(actions) == 4 and stop.value.value == Stop("budget", "out of budget after 4 steps")
    exact = with_budget(motion.execute(motion.Motion("noop", 4), env.privileged(), IMAGE), 4)
    assert [next(exact) for _ in range(4)] == [0, 0, 0, 0]
    with pytest.raises(StopIteration) as stop:
        next(exact)
    assert stop.value.value == Stop("done", "done")


def test_approach_walks_onto_a_free_cell_and_up_to_an_obstacle():
    stop, state, steps = run(grounding, grounding.Grounding("approach", point(3, 2)), OPEN)
    assert stop.ok and state.position == (35, 34) and steps == 5
    stop, state, _ = run(grounding, grounding.Grounding("approach", point(3, 0)), with_blocks(Block("water", 3, 0)))
    assert stop.ok and state.position == (34, 32)
