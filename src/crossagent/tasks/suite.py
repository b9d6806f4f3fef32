"""A task suite file: versioned JSON with the tasks and the ids of the mini set."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from crossagent.tasks.task import CATEGORIES, Task

PACKAGED_SUITE = "crafter-v1.json"
SUITE_FORMAT = 1


@dataclass(frozen=True)
class TaskSuite:
    name: str
    version: int
    tasks: tuple[Task, ...]
    mini_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        ids = [task.id for task in self.tasks]
        duplicates = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
        if duplicates:
            raise ValueError(f"suite {self.name!r}: duplicate task id(s) {', '.join(duplicates[:5])}")
        unknown = [i for i in self.mini_ids if i not in set(ids)]
        if unknown:
            raise ValueError(f"suite {self.name!r}: mini set names unknown task id(s) {', '.join(unknown[:5])}")

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(f"no task with id {task_id!r} in suite {self.name!r} ({len(self.tasks)} tasks)")

    @property
    def mini(self) -> tuple[Task, ...]:
        return tuple(self.task(i) for i in self.mini_ids)

    def select(self, which: str) -> tuple[Task, ...]:
        """'full', 'mini', a category name, or a comma-separated list of task ids."""
        if which == "full":
            return self.tasks
        if which == "mini":
            return self.mini
        if which in CATEGORIES:
            return tuple(t for t in self.tasks if t.category == which)
        return tuple(self.task(i.strip()) for i in which.split(",") if i.strip())

    def to_dict(self) -> dict:
        return {
            "format": SUITE_FORMAT,
            "name": self.name,
            "version": self.version,
            "mini": list(self.mini_ids),
            "tasks": [task.to_dict() for task in self.tasks],
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")


def packaged_suite_path() -> Path:
    return Path(str(resources.files("crossagent.tasks") / "suites" / PACKAGED_SUITE))


def load_suite(path: str | Path | None = None) -> TaskSuite:
    """Load a suite file (the packaged one by default); errors name the file and the problem."""
    path = Path(path) if path is not None else packaged_suite_path()
    if not path.exists():
        raise FileNotFoundError(f"task suite file {path} does not exist")
    if path.is_dir():
        raise ValueError(f"task suite file {path} is a directory, not a suite JSON file")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})") from error
    try:
        return suite_from_dict(data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def suite_from_dict(data: dict) -> TaskSuite:
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object with 'name', 'version', 'tasks' and 'mini'")
    for name in ("name", "version", "tasks", "mini"):
        if name not in data:
            raise ValueError(f"suite.{name}: missing")
    if data.get("format", SUITE_FORMAT) != SUITE_FORMAT:
        raise ValueError(f"suite.format: {data['format']!r} is not the supported format {SUITE_FORMAT}")
    if not isinstance(data["tasks"], list):
        raise ValueError("suite.tasks: expected a list")
    tasks = []
    for index, entry in enumerate(data["tasks"]):
        try:
            tasks.append(Task.from_dict(entry))
        except ValueError as error:
            raise ValueError(f"suite.tasks[{index}]: {error}") from error
    return TaskSuite(name=str(data["name"]), version=int(data["version"]), tasks=tuple(tasks),
                     mini_ids=tuple(data["mini"]))
