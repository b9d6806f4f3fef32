"""Expand the compact spec into candidate tasks, prove each solvable with the expert, write the suite.

A candidate the expert fails on is dropped, never kept. The expert's step count is stored
with each task and the budget is derived from it.
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from crossagent.envs.start_state import Block, Mob, StartState
from crossagent.tasks.predicates import predicate_from_dict
from crossagent.tasks.spec import MINI_PER_CATEGORY, TEMPLATES, WORLD_SEEDS, Template, Variant
from crossagent.tasks.suite import TaskSuite
from crossagent.tasks.task import CATEGORIES, Task

SUITE_NAME = "crafter-v1"
SUITE_VERSION = 1
PLACEHOLDER_BUDGET = 1000  # the validation budget; replaced by the derived budget
MAX_BUDGET = 1000


def derive_budget(expert_steps: int) -> int:
    """Room for a learner and for unlucky dice: 2.5x the expert's steps plus 60, rounded up to 10,
    within 100..1000."""
    return min(MAX_BUDGET, max(100, int(math.ceil((2.5 * expert_steps + 60) / 10) * 10)))


def candidate_tasks(templates: Iterable[Template] = TEMPLATES, world_seeds: tuple[int, ...] = WORLD_SEEDS) -> list[Task]:
    tasks = []
    for t_index, template in enumerate(templates):
        for v_index, variant in enumerate(template.variants):
            for k in range(template.seeds_per_variant):
                seed = world_seeds[(7 * k + 3 * t_index + v_index) % len(world_seeds)]
                tasks.append(_candidate(template, variant, seed))
    return tasks


def _candidate(template: Template, variant: Variant, seed: int) -> Task:
    task_id = f"{template.category}.{template.name}.{variant.name}.w{seed}"
    rng = np.random.default_rng(zlib.crc32(task_id.encode()))
    taken = {(0, 0)}
    blocks = tuple(Block(material, *_offset(rng, distance, taken)) for material, distance in variant.blocks)
    mobs = tuple(Mob(kind, *_offset(rng, distance, taken)) for kind, distance in variant.mobs)
    start = StartState(inventory=dict(variant.inventory), blocks=blocks, mobs=mobs, daylight=variant.daylight,
                       clear_hostiles_within=variant.clear_hostiles_within)
    instruction, *paraphrases = template.instructions
    return Task(id=task_id, category=template.category, instruction=instruction, paraphrases=tuple(paraphrases),
                world_seed=seed, start=start, budget=PLACEHOLDER_BUDGET,
                success=predicate_from_dict(template.success), difficulty=variant.difficulty)


def _offset(rng: np.random.Generator, distance: int, taken: set[tuple[int, int]]) -> tuple[int, int]:
    """A free cell at exactly this Manhattan distance from the spawn."""
    for _ in range(100):
        dx = int(rng.integers(-distance, distance + 1))
        dy = (distance - abs(dx)) * (1 if rng.random() < 0.5 else -1)
        if (dx, dy) not in taken:
            taken.add((dx, dy))
            return dx, dy
    raise ValueError(f"no free cell at distance {distance}")


def finalize(candidates: list[Task], expert_steps: dict[str, int | None]) -> TaskSuite:
    """Keep the tasks the expert solved, with their budgets; pick the mini set."""
    kept = []
    for task in candidates:
        steps = expert_steps.get(task.id)
        if steps is None:
            continue
        data = task.to_dict() | {"budget": derive_budget(steps), "expert_steps": steps}
        kept.append(Task.from_dict(data))
    return TaskSuite(name=SUITE_NAME, version=SUITE_VERSION, tasks=tuple(kept), mini_ids=tuple(pick_mini(kept)))


def pick_mini(tasks: list[Task]) -> list[str]:
    """Per category: easy/medium/hard in MINI_PER_CATEGORY's numbers, spread over templates."""
    chosen = []
    for category in CATEGORIES:
        for difficulty, count in MINI_PER_CATEGORY.items():
            pool = [t for t in tasks if t.category == category and t.difficulty == difficulty]
            chosen.extend(t.id for t in _round_robin_by_template(pool, count))
    return chosen


def _round_robin_by_template(pool: list[Task], count: int) -> list[Task]:
    groups: dict[str, list[Task]] = defaultdict(list)
    for task in pool:
        groups[task.id.split(".")[1]].append(task)
    picked: list[Task] = []
    for round_index in range(max((len(g) for g in groups.values()), default=0)):
        for name in sorted(groups):
            if round_index < len(groups[name]) and len(picked) < count:
                picked.append(groups[name][round_index])
    if len(picked) < count:
        raise ValueError(f"only {len(picked)} tasks available for a mini slot that needs {count}")
    return picked


