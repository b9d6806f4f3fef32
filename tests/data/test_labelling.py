"""Labelling rules on hand-built trajectories."""

from crossagent.actions.grounding import Grounding
from crossagent.actions.motion import MAX_REPEAT, Motion
from crossagent.actions.skill import Skill
from crossagent.data.labelling import grounding_labels, label_episode, motion_labels, raw_labels, skill_labels
from crossagent.data.recording import Creature
from crossagent.envs.view_geometry import point_of_cell
from tests.data.conftest import make_step


def walk_left(step, x, blocked=False):
    return make_step(step, "move_left", (x, 5), (x, 5) if blocked else (x - 1, 5))


def test_motion_runs_count_the_repeats_ahead_and_stop_at_a_blocked_move():
    steps = [walk_left(0, 9), walk_left(1, 8), walk_left(2, 7), walk_left(3, 6, blocked=True),
             walk_left(4, 6, blocked=True), make_step(5, "do", (6, 5)), make_step(6, "do", (6, 5)),
             make_step(7, "noop", (6, 5))]
    assert [m.count for m in motion_labels(steps)] == [3, 2, 1, 1, 1, 2, 1, 1]
    assert motion_labels(steps)[0] == Motion("move_left", 3)
    assert motion_labels(steps)[7] == Motion("noop", 1)


def test_a_blocked_move_is_a_turn_of_its_own_before_a_run():
    steps = [walk_left(0, 9, blocked=True), walk_left(1, 9), walk_left(2, 8)]
    assert [m.count for m in motion_labels(steps)] == [1, 2, 1]


def test_motion_runs_are_capped():
    steps = [make_step(i, "noop", (5, 5)) for i in range(MAX_REPEAT + 5)]
    assert [m.count for m in motion_labels(steps)][:7] == [MAX_REPEAT] * 6 + [MAX_REPEAT - 1]


def test_raw_labels_are_the_actions():
    steps = [make_step(0, "do", (5, 5)), make_step(1, "place_table", (5, 5))]
    assert [a.name for a in raw_labels(steps)] == ["do", "place_table"]


def test_grounding_points_at_the_next_target_where_it_is_visible_and_explores_before():
    # The tree at (15, 10) is 5 columns right of the start: out of the 9x7 view until one step is made.
    steps = [make_step(i, "move_right", (10 + i, 10), (11 + i, 10)) for i in range(4)]
    steps.append(make_step(4, "do", (14, 10), facing=(1, 0), facing_material="tree", events=("collect_wood",)))
    labels = grounding_labels(steps, 64)
    assert labels[0] == Grounding("explore")
    for step, label in zip(steps[1:], labels[1:]):
        assert label == Grounding("collect", point_of_cell(step.position, (15, 10), 64), "tree")
    assert labels[1].point != labels[4].point  # projected on each step's own image


def test_grounding_follows_a_moving_creature_and_uses_the_oracle_verbs():
    zombie_then, zombie_now = Creature(7, "zombie", (13, 10)), Creature(7, "zombie", (14, 11))
    steps = [
        make_step(0, "move_right", (11, 10), (12, 10), creatures=(zombie_now,)),
        make_step(1, "do", (12, 10), facing=(1, 0), facing_material="grass", facing_creature="zombie",
                  facing_creature_id=7, creatures=(zombie_then,)),
        make_step(2, "do", (12, 10), facing=(0, 1), facing_material="water"),
        make_step(3, "place_table", (12, 10), facing=(-1, 0), facing_material="grass"),
        make_step(4, "make_wood_pickaxe", (12, 10), station=(11, 10)),
        make_step(5, "noop", (12, 10)),
        make_step(6, "move_up", (12, 10), (12, 9)),
    ]
    labels = grounding_labels(steps, 64)
    assert labels[0] == Grounding("attack", point_of_cell((11, 10), (14, 11), 64), "zombie")  # where it is at step 0
    assert labels[1] == Grounding("attack", point_of_cell((12, 10), (13, 10), 64), "zombie")
    assert labels[2] == Grounding("drink", point_of_cell((12, 10), (12, 11), 64), "water")
    assert labels[3] == Grounding("place table", point_of_cell((12, 10), (11, 10), 64), "grass")
    assert labels[4] == Grounding("make wood pickaxe", point_of_cell((12, 10), (11, 10), 64), "table")
    assert labels[5:] == [Grounding("no-op"), Grounding("explore")]  # nothing left to interact with


def test_a_creature_out_of_view_at_the_step_is_explore():
    steps = [make_step(0, "move_right", (5, 5), (6, 5)),  # zombie 7 not in this step's view
             make_step(1, "do", (6, 5), facing=(1, 0), facing_creature="zombie", facing_creature_id=7,
                       creatures=(Creature(7, "zombie", (7, 5)),))]
    assert grounding_labels(steps, 64)[0] == Grounding("explore")


def test_skill_segments_end_at_the_next_event():
    steps = [make_step(0, "move_left", (5, 5)), make_step(1, "do", (5, 5), events=("collect_wood",)),
             make_step(2, "move_up", (5, 5)), make_step(3, "place_table", (5, 5), events=("place_table",)),
             make_step(4, "do", (5, 5), events=("eat_plant",)),  # no skill sentence for it
             make_step(5, "noop", (5, 5))]
    assert [s.sentence for s in skill_labels(steps)] == [
        "collect wood", "collect wood", "place table", "place table", "explore", "explore"]


def test_label_episode_gives_every_level_per_step():
    steps = [make_step(0, "do", (5, 5), facing_material="tree", events=("collect_wood",))]
    (labels,) = label_episode(steps, 64)
    assert set(labels) == {"raw", "motion", "grounding", "skill"}
    assert labels["skill"] == Skill("collect wood") and labels["grounding"].verb == "collect"


def test_a_do_on_nothing_is_no_target():
    steps = [make_step(0, "do", (5, 5), facing=(1, 0), facing_material="path"),
             make_step(1, "do", (5, 5), facing=(0, 1), facing_material="stone", events=("collect_stone",))]
    assert grounding_labels(steps, 64)[0] == Grounding("collect", point_of_cell((5, 5), (5, 6), 64), "stone")
