"""Expert behaviours on hand-built start states."""

from crossagent.actions import behaviours as b
from crossagent.actions.executor import failed
from crossagent.agents.expert import ExpertAgent
from crossagent.agents.random_agent import RandomAgent
from crossagent.bench.episode import make_env
from crossagent.bench.episode_loop import run_episode
from crossagent.envs.crafter_env import CrafterEnv
from crossagent.envs.start_state import Block, Mob, StartState
from crossagent.tasks.predicates import Achieve, Gain, Reach
from crossagent.tasks.task import Task


def task(success, start=StartState(), seed=1, budget=400) -> Task:
    return Task("t", "craft", "x", ("y", "z"), seed, start, budget, success)


def run(behaviour_factory, start: StartState, seed: int = 1, limit: int = 400):
    env = CrafterEnv(observe_image=False, observe_text=False)
    env.reset(seed=seed, options={"start": start})
    state = env.privileged()
    behaviour = behaviour_factory(state)
    steps = 0
    try:
        while steps < limit:
            env.step(next(behaviour))
            steps += 1
    except StopIteration as stop:
        return stop.value, state, steps
    raise AssertionError("behaviour did not stop")


def test_expert_makes_an_iron_pickaxe_from_nothing():
    expert = ExpertAgent()
    result = run_episode(make_env(expert), expert, task(Achieve("make_iron_pickaxe"), StartState(blocks=(Block("iron", 5, 1),))), 0)
    assert result.success
    assert {"collect_wood", "place_table", "make_wood_pickaxe", "collect_stone", "make_stone_pickaxe",
            "collect_iron", "place_furnace", "collect_coal"} <= set(result.unlocked)


def test_collect_reports_a_missing_tool_instead_of_guessing():
    outcome, _, steps = run(lambda s: b.collect(s, "iron"), StartState(blocks=(Block("iron", 2, 0),)))
    assert outcome == failed("collecting iron needs stone_pickaxe") and steps == 0


def test_collect_tunnels_to_enclosed_material():
    walls = tuple(Block("stone", dx, dy) for dx in range(2, 7) for dy in range(-2, 3) if (dx, dy) != (5, 0))
    start = StartState(inventory={"wood_pickaxe": 1, "stone_pickaxe": 1}, blocks=(*walls, Block("iron", 5, 0)))
    outcome, state, _ = run(lambda s: b.collect(s, "iron"), start)
    assert outcome.ok and state.inventory["iron"] == 1
    assert state.inventory["stone"] >= 1  # it dug through stone to get there


def test_place_faces_a_free_cell_and_places():
    outcome, state, _ = run(lambda s: b.place(s, "table"), StartState(inventory={"wood": 5}))
    assert outcome.ok
    assert any(state.material((state.position[0] + dx, state.position[1] + dy)) == "table"
               for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)))


def test_defeat_fights_zombies_and_fails_when_none_is_left():
    start = StartState(inventory={"stone_sword": 1}, mobs=(Mob("zombie", 3, 0),), daylight="day", clear_hostiles_within=20)
    outcome, state, _ = run(lambda s: b.defeat(s, "zombie"), start)
    assert outcome.ok and state.achievements["defeat_zombie"] == 1
    outcome, _, steps = run(lambda s: b.defeat(s, "zombie", wait_steps=5), StartState(daylight="day", clear_hostiles_within=64))
    assert outcome == failed("no zombie left to defeat") and steps == 5


def test_go_to_reports_an_unreachable_goal():
    moat = tuple(Block("water", dx, dy) for dx in range(-2, 3) for dy in range(-2, 3) if max(abs(dx), abs(dy)) == 2)
    outcome, _, steps = run(lambda s: b.go_to(s, b.adjacent_to(b.cells_of(s, "diamond")), "diamond"),
                            StartState(blocks=(*moat, Block("diamond", 5, 0))))
    assert outcome == failed("no path to diamond") and steps == 0


def test_expert_reaches_and_random_rarely_does():
    goal = task(Reach("diamond"), StartState(blocks=(Block("diamond", 8, 3),)), budget=60)
    expert, rand = ExpertAgent(), RandomAgent()
    assert run_episode(make_env(expert), expert, goal, 0).success
    assert sum(run_episode(make_env(rand), rand, goal, trial).success for trial in range(3)) < 3


def test_expert_collects_several_wood():
    expert = ExpertAgent()
    result = run_episode(make_env(expert), expert, task(Gain("wood", 3)), 0)
    assert result.success and result.steps < 100
