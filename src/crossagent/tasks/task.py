"""A task is data: what to do, in which world, from which start, within which budget."""

from __future__ import annotations

import re
from dataclasses import dataclass

from crossagent.envs.start_state import StartState, is_int
from crossagent.tasks.predicates import Predicate, predicate_from_dict

CATEGORIES = ("embodied", "craft", "combat")
DIFFICULTIES = ("easy", "medium", "hard")
WORLD_SEED_LIMIT = 2**32  # crafter generates the world with numpy's RandomState, which takes seeds below this


def task_kind(task_id: str) -> str:
    """A task id without its world suffix (`.w7`): the suite has several worlds of each kind. An id without one is
    its own kind."""
    head, _, last = task_id.rpartition(".")
    return head if head and re.fullmatch(r"w\d+", last) else task_id


@dataclass(frozen=True)
class Task:
    id: str
    category: str
    instruction: str
    paraphrases: tuple[str, ...]
    world_seed: int
    start: StartState
    budget: int
    success: Predicate
    difficulty: str = "easy"
    expert_steps: int | None = None  # steps the expert took when the task was validated

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "category": self.category,
            "difficulty": self.difficulty,
            "instruction": self.instruction,
            "paraphrases": list(self.paraphrases),
            "world_seed": self.world_seed,
            "start": self.start.to_dict(),
            "budget": self.budget,
            "success": self.success.to_dict(),
            "expert_steps": self.expert_steps,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Task":
        """Build a task, or raise ValueError naming the task, the field and the problem."""
        if not isinstance(data, dict):
            raise ValueError(f"task: expected an object, got {type(data).__name__}")
        task_id = data.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise ValueError("task.id: missing or not a non-empty string")
        try:
            return cls._checked(task_id, data)
        except ValueError as error:
            raise ValueError(f"task {task_id!r}: {error}") from error

    @classmethod
    def _checked(cls, task_id: str, data: dict) -> "Task":
        required = ("category", "instruction", "paraphrases", "world_seed", "start", "budget", "success")
        for name in required:
            if name not in data:
                raise ValueError(f"{name}: missing")
        known = set(required) | {"id", "difficulty", "expert_steps"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
        if data["category"] not in CATEGORIES:
            raise ValueError(f"category: {data['category']!r} is not one of {', '.join(CATEGORIES)}")
        difficulty = data.get("difficulty", "easy")
        if difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty: {difficulty!r} is not one of {', '.join(DIFFICULTIES)}")
        if not isinstance(data["instruction"], str) or not data["instruction"].strip():
            raise ValueError("instruction: must be a non-empty string")
        paraphrases = data["paraphrases"]
        if not isinstance(paraphrases, list) or len(paraphrases) < 2 or not all(isinstance(p, str) and p for p in paraphrases):
            raise ValueError("paraphrases: must be a list of at least 2 non-empty strings")
        world_seed = data["world_seed"]
        if not is_int(world_seed) or not 0 <= world_seed < WORLD_SEED_LIMIT:
            raise ValueError(f"world_seed: {world_seed!r} is not an integer in 0..{WORLD_SEED_LIMIT - 1}")
        if not is_int(data["budget"]) or data["budget"] < 1:
            raise ValueError(f"budget: {data['budget']!r} is not a positive integer")
        expert_steps = data.get("expert_steps")
        if expert_steps is not None and (not is_int(expert_steps) or expert_steps < 0):
            raise ValueError(f"expert_steps: {expert_steps!r} is not a non-negative integer or null")
        if not isinstance(data["start"], dict):
            raise ValueError("start: expected an object")
        return cls(
            id=task_id,
            category=data["category"],
            instruction=data["instruction"],
            paraphrases=tuple(paraphrases),
            world_seed=world_seed,
            start=StartState.from_dict(data["start"]),
            budget=data["budget"],
            success=predicate_from_dict(data["success"]),
            difficulty=difficulty,
            expert_steps=expert_steps,
        )
