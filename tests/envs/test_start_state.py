import numpy as np
import pytest

from crossagent.envs.crafter_env import CrafterEnv
from crossagent.envs.start_state import Block, Mob, StartState


def test_edits_are_applied_relative_to_the_spawn():
    env = CrafterEnv()
    start = StartState(inventory={"wood": 4, "stone_pickaxe": 1}, blocks=(Block("diamond", 2, -1),),
                       mobs=(Mob("zombie", -3, 0), Mob("skeleton", 0, 3)), daylight="night", player_offset=(1, 1))
    obs, _ = env.reset(seed=0, options={"start": start})
    state = env.privileged()
    spawn = (32, 32)
    assert state.position == (33, 33)
    assert state.material((34, 31)) == "diamond"
    assert type(state.object_at((29, 32))).__name__ == "Zombie"
    assert type(state.object_at((32, 35))).__name__ == "Skeleton"
    assert state.material((32, 35)) in ("path", "grass", "sand")
    assert state.inventory["wood"] == 4 and state.inventory["stone_pickaxe"] == 1
    assert state.daylight == 0.0
    assert spawn != state.position
    env.step(0)
    assert env.privileged().daylight == 0.0  # fixed night stays night
    assert "wood 4" in obs.text and "time: night" in obs.text


def test_observation_holds_only_what_a_player_sees():
    env = CrafterEnv(image_size=96)
    obs, info = env.reset(seed=1)
    assert obs.image.shape == (96, 96, 3) and obs.image.dtype == np.uint8
    assert set(vars(obs)) == {"image", "text"}
    assert set(info) == {"step", "unlocked"}
    rows = obs.text.split("\n")[1:8]
    assert all(len(row) == 9 for row in rows) and rows[3][4] == "@"


def test_image_and_text_can_be_switched_off():
    env = CrafterEnv(observe_image=False, observe_text=False)
    obs, _ = env.reset(seed=1)
    assert obs.image is None and obs.text is None


@pytest.mark.parametrize("start, message", [
    ({"inventory": {"gold": 1}}, "unknown item 'gold'"),
    ({"inventory": {"wood": 12}}, "start.inventory.wood: 12 is not an integer in 0..9"),
    ({"blocks": [["marble", 1, 1]]}, "unknown material 'marble'"),
    ({"mobs": [["dragon", 1, 1]]}, "unknown mob 'dragon'"),
    ({"mobs": [["cow", 0, 0]]}, "is the player's cell"),
    ({"daylight": "twilight"}, "start.daylight: 'twilight'"),
    ({"daylight": ["day"]}, "start.daylight: ['day']"),
    ({"weather": "rain"}, "unknown field(s) weather"),
    ({"blocks": [["tree", 1]]}, "start.blocks[0]: expected [material, dx, dy], got ['tree', 1]"),
    ({"mobs": {"cow": [1, 1]}}, "start.mobs: expected a list of [kind, dx, dy]"),
    ({"clear_hostiles_within": -1}, "start.clear_hostiles_within: -1 is not a non-negative integer"),
])
def test_bad_start_states_are_rejected_with_the_field_named(start, message):
    with pytest.raises(ValueError, match=None) as error:
        StartState.from_dict(start)
    assert message in str(error.value)


def test_edits_outside_the_world_are_rejected_when_built():
    with pytest.raises(ValueError, match=r"start.blocks: stone at \(32, 0\) is outside the 64x64 world "
                                         r"\(from the spawn, dx runs -32..31, dy -32..31\)"):
        StartState(blocks=(Block("stone", 32, 0),))
    with pytest.raises(ValueError, match=r"start.player_offset: the player at \(0, -33\) is outside"):
        StartState(player_offset=(0, -33))
    StartState(blocks=(Block("stone", 31, -32),))  # the world's corner cell


def test_unknown_reset_options_and_bad_actions_are_rejected():
    env = CrafterEnv()
    with pytest.raises(ValueError, match="unknown option"):
        env.reset(seed=0, options={"speed": 2})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not in 0..16"):
        env.step(17)
