"""Oracle level agents: each expresses the expert's plan in one level only."""

import pytest

from crossagent.actions.chain import parse_reply
from crossagent.agents.oracle import OraclePolicy, remaining_goal, sentence_of_event
from crossagent.agents.registry import make_agent
from crossagent.bench.episode import make_env
from crossagent.bench.episode_loop import run_episode
from crossagent.envs.crafter_env import CrafterEnv
from crossagent.envs.start_state import Block, StartState
from crossagent.envs.view_geometry import point_of_cell
from crossagent.tasks.predicates import Achieve, AllOf, Gain
from crossagent.tasks.task import Task

FROM_SCRATCH = Task("t", "craft", "x", ("y", "z"), 3, StartState(daylight="day"), 300, Achieve("make_wood_pickaxe"))


@pytest.mark.parametrize("level", ["raw", "motion", "grounding", "skill"])
def test_every_oracle_makes_a_wood_pickaxe_from_scratch_speaking_only_its_level(level):
    agent = make_agent(f"oracle:{level}")
    result = run_episode(make_env(agent), agent, FROM_SCRATCH, 0)
    assert result.success
    assert set(result.extra["executed"]) == {level}
    assert set(result.extra["contained"]) == {level}


def test_the_grounding_oracle_points_at_the_tree_the_expert_chops_next():
    env = CrafterEnv(observe_image=False, observe_text=False)
    start = StartState(blocks=(Block("tree", 2, -1),), daylight="day")
    env.reset(seed=0, options={"start": start})
    policy = OraclePolicy("grounding")
    policy.reset(Task("t", "embodied", "x", ("y", "z"), 0, start, 50, Gain("wood", 1)), 0)
    reply = parse_reply(policy.write(None, env.privileged()))
    action = reply.action("grounding")
    assert action.verb == "collect" and action.label == "tree"
    assert action.point == point_of_cell((32, 32), (34, 31), 64)


def test_remaining_goal_subtracts_what_the_episode_already_did():
    env = CrafterEnv(observe_image=False, observe_text=False)
    env.reset(seed=0)
    state = env.privileged()
    start = state.progress()
    state.player.inventory["wood"] += 2
    state.player.achievements["make_wood_pickaxe"] += 1
    now = state.progress()
    goal = AllOf((Gain("wood", 3), Achieve("make_wood_pickaxe"), Achieve("make_wood_sword")))
    assert remaining_goal(goal, start, now, state) == AllOf((Gain("wood", 1), Achieve("make_wood_sword")))
    assert remaining_goal(Gain("wood", 2), start, now, state) is None


def test_events_map_to_skill_sentences():
    assert sentence_of_event("collect_wood") == "collect wood"
    assert sentence_of_event("make_stone_pickaxe") == "make stone pickaxe"
    assert sentence_of_event("defeat_zombie") == "defeat zombie"
    assert sentence_of_event("wake_up") == "sleep"
    assert sentence_of_event("eat_plant") is None


def test_unknown_agents_and_levels_are_rejected():
    with pytest.raises(ValueError, match="unknown agent 'oracle:dance'"):
        make_agent("oracle:dance")


def test_the_latent_oracle_needs_its_codebook(tmp_path):
    from crossagent.executors.registry import Executors

    with pytest.raises(FileNotFoundError, match="crossagent executors train-latent"):
        make_agent("oracle:latent", Executors("scripted", tmp_path))
