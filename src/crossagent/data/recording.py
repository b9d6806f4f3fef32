"""Record episodes of an agent as per-step trajectories: what the player saw, what it did, and the
privileged annotations that programmatic labelling needs (positions, the faced cell, creatures in
view, achievements unlocked).

A recording is a folder: `manifest.json` plus one Hugging Face `datasets` shard per N episodes
(`shard-00000`, ...). The manifest names every episode already run, so re-running the same
command records only the missing ones; an interrupted run loses at most the unwritten shard.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import crafter
from datasets import Dataset, Features, Image, List, Value, concatenate_datasets, load_from_disk
from crossagent.agents.base import Agent
from crossagent.agents.oracle import CREATURES, creature_name, nearest_station
from crossagent.agents.registry import make_agent, require_known_agent
from crossagent.bench.episode import Episode
from crossagent.bench.episode_loop import Finished, run_episode, run_episodes
from crossagent.bench.pool import run_jobs
from crossagent.bench.runner import plan_episodes
from crossagent.envs.crafter_env import ACHIEVEMENTS, ACTION_NAMES, CrafterEnv, Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.envs.text_view import TEXT_VIEW_VERSION, render_text
from crossagent.envs.view_geometry import point_of_cell
from crossagent.folder_lock import writes_folder
from crossagent.json_files import read_json
from crossagent.progress import progress_bar
from crossagent.tasks.task import Task

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 2  # 2: steps carry the text view
DEFAULT_IMAGE_SIZE = 64
DEFAULT_SHARD_EPISODES = 20
ITEMS: tuple[str, ...] = tuple(crafter.constants.items)
Cell = tuple[int, int]

_CELL = List(Value("int32"), length=2)
FEATURES = Features({
    "task_id": Value("string"), "trial": Value("int32"), "category": Value("string"),
    "instruction": Value("string"), "step": Value("int32"), "image": Image(), "text": Value("string"),
    "action_index": Value("int32"), "action": Value("string"),
    "position": _CELL, "facing": _CELL, "facing_cell": _CELL, "facing_material": Value("string"),
    "facing_creature": Value("string"), "facing_creature_id": Value("int32"), "station": _CELL,
    "creatures": List({"id": Value("int32"), "kind": Value("string"), "x": Value("int32"), "y": Value("int32")}),
    "arrived": _CELL, "events": List(Value("string")),
    "inventory": {name: Value("int32") for name in ITEMS},
    "achievements": {name: Value("int32") for name in ACHIEVEMENTS},
    "daylight": Value("float64"), "success": Value("bool"),
})


@dataclass(frozen=True)
class Creature:
    """A creature the player can attack or eat, with an id that follows it through the episode."""

    id: int
    kind: str
    cell: Cell


@dataclass(frozen=True)
class StepRecord:
    """One primitive step: the state before the action, the action, and what the step changed."""

    task_id: str
    trial: int
    step: int
    action: str  # the primitive action's env name
    position: Cell  # before the action
    arrived: Cell  # after it: equal to `position` for a blocked move
    image: Any = None  # uint8 HxWx3 array, or an encoded {"bytes", "path"} as read back without decoding
    text: str = ""  # the text view of the same observation (envs.text_view)
    category: str = ""
    instruction: str = ""
    facing: Cell = (0, 1)
    facing_material: str | None = None
    facing_creature: str | None = None  # kind of the creature on the faced cell
    facing_creature_id: int | None = None
    station: Cell | None = None  # a table within reach (where make_* crafts)
    creatures: tuple[Creature, ...] = ()  # in view, before the action
    events: tuple[str, ...] = ()  # achievements the step unlocked (counter raised)
    inventory: dict[str, int] = field(default_factory=dict)  # after the step
    achievements: dict[str, int] = field(default_factory=dict)  # after the step
    daylight: float = 1.0
    success: bool = True  # the episode's

    @property
    def key(self) -> tuple[str, int]:
        return self.task_id, self.trial

    @property
    def facing_cell(self) -> Cell:
        return self.position[0] + self.facing[0], self.position[1] + self.facing[1]

    @property
    def blocked(self) -> bool:
        """A move that did not move the player (it only turned it)."""
        return self.action.startswith("move_") and self.arrived == self.position

    def creature(self, creature_id: int) -> Creature | None:
        return next((c for c in self.creatures if c.id == creature_id), None)

    def to_row(self) -> dict:
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row.update(
            action_index=ACTION_NAMES.index(self.action), facing_cell=list(self.facing_cell),
            creatures=[{"id": c.id, "kind": c.kind, "x": c.cell[0], "y": c.cell[1]} for c in self.creatures],
            events=list(self.events), inventory={name: self.inventory.get(name, 0) for name in ITEMS},
            achievements={name: self.achievements.get(name, 0) for name in ACHIEVEMENTS},
        )
        return {name: row[name] for name in FEATURES}

    @classmethod
    def from_row(cls, row: dict) -> "StepRecord":
        cell = lambda value: None if value is None else (int(value[0]), int(value[1]))  # noqa: E731
        return cls(
            task_id=row["task_id"], trial=row["trial"], step=row["step"], action=row["action"],
            position=cell(row["position"]), arrived=cell(row["arrived"]), image=row["image"], text=row["text"],
            category=row["category"], instruction=row["instruction"], facing=cell(row["facing"]),
            facing_material=row["facing_material"], facing_creature=row["facing_creature"],
            facing_creature_id=row["facing_creature_id"], station=cell(row["station"]),
            creatures=tuple(Creature(c["id"], c["kind"], (c["x"], c["y"])) for c in row["creatures"]),
            events=tuple(row["events"]), inventory=dict(row["inventory"]), achievements=dict(row["achievements"]),
            daylight=row["daylight"], success=row["success"],
        )


@dataclass(frozen=True)
class EpisodeRecord:
    task_id: str
    trial: int
    category: str
    success: bool
    steps: tuple[StepRecord, ...]


class StepRecorder:
    """A StepHook (bench.episode) that keeps every step of one episode: before each action the image
    and the annotations, after it the effects. It reads the privileged state, which the agent is
    handed only if it uses it, so a recorded policy sees exactly what it would in the benchmark."""

    def __init__(self, task: Task, trial: int):
        self.task, self.trial = task, trial
        self.steps: list[StepRecord] = []
        self._pending: dict | None = None
        self._ids: dict[object, int] = {}  # creature -> id; holding the objects keeps ids unique

    def before(self, observation: Observation, state: PrivilegedState, action: int) -> None:
        material, faced = state.world[state.facing_cell]  # (None, None) outside the world
        kind = creature_name(faced)
        self._pending = dict(
            task_id=self.task.id, trial=self.trial, step=len(self.steps), action=ACTION_NAMES[action],
            position=state.position, image=observation.image, text=render_text(state), category=self.task.category,
            instruction=self.task.instruction, facing=state.facing,
            facing_material=material,
            facing_creature=kind, facing_creature_id=self._id(faced) if kind else None,
            station=nearest_station(state, state.position), creatures=self._creatures_in_view(state),
            daylight=state.daylight, achievements=dict(state.achievements),
        )

    def after(self, state: PrivilegedState) -> None:
        before = self._pending.pop("achievements")
        events = tuple(name for name, count in state.achievements.items() if count > before[name])
        self.steps.append(StepRecord(**self._pending, arrived=state.position, events=events,
                                     inventory=dict(state.inventory), achievements=dict(state.achievements)))
        self._pending = None

    def episode(self, success: bool) -> EpisodeRecord:
        steps = tuple(replace(step, success=success) for step in self.steps)
        return EpisodeRecord(self.task.id, self.trial, self.task.category, success, steps)

    def _creatures_in_view(self, state: PrivilegedState) -> tuple[Creature, ...]:
        # Whether a cell is in view does not depend on the image size.
        seen = [obj for obj in state.world.objects if isinstance(obj, CREATURES) and obj.health > 0
                and point_of_cell(state.position, tuple(obj.pos), DEFAULT_IMAGE_SIZE) is not None]
        return tuple(Creature(self._id(obj), creature_name(obj), (int(obj.pos[0]), int(obj.pos[1]))) for obj in seen)

    def _id(self, obj) -> int:
        return self._ids.setdefault(obj, len(self._ids))


def recording_env(agent: Agent, image_size: int = DEFAULT_IMAGE_SIZE) -> CrafterEnv:
    """Recordings keep the image whatever the agent reads."""
    return CrafterEnv(image_size=image_size, observe_image=True, observe_text=agent.needs_text)


def record_episode(env: CrafterEnv, agent: Agent, task: Task, trial: int) -> EpisodeRecord:
    """Run one benchmark episode (same reset, dynamics seed and success rule) and keep its steps."""
    recorder = StepRecorder(task, trial)
    return recorder.episode(run_episode(env, agent, task, trial, hook=recorder).success)


# --- recording many episodes into a resumable folder ------------------------------------------
@dataclass(frozen=True)
class RecordingRun:
    planned: int  # episodes asked for
    skipped: int  # of those, already in the manifest
    recorded: int  # run now
    kept: int  # of those, stored (successful ones unless keep_failed)
    steps: int  # steps stored now
    wall_time: float
    errors: list[EpisodeFailure] = field(default_factory=list)  # episodes that raised (not stored)


@writes_folder(lambda call: call["out"])
def record(agent_name: str, tasks: Sequence[Task], trials: int, out: str | Path, *,
           image_size: int = DEFAULT_IMAGE_SIZE, shard_episodes: int = DEFAULT_SHARD_EPISODES,
           keep_failed: bool = False, workers: int = 1, progress: bool = True) -> RecordingRun:
    """Record every missing (task, trial) episode of `agent_name` into `out`."""
    require_known_agent(agent_name)
    if shard_episodes < 1:
        raise ValueError(f"shard_episodes must be at least 1, got {shard_episodes}")
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _open_manifest(out, {"agent": agent_name, "image_size": image_size, "keep_failed": keep_failed,
                                    "text_view": TEXT_VIEW_VERSION})
    done = {(e["task_id"], e["trial"]) for e in manifest["episodes"]}
    todo = plan_episodes(tasks, trials, done)
    planned = len(tasks) * trials
    buffer: list[EpisodeRecord] = []
    errors: list[EpisodeFailure] = []
    kept = steps = 0
    bar = progress_bar(len(todo), f"record {agent_name}", enabled=progress)
    try:
        with bar, closing(_record_all(agent_name, tasks, todo, image_size, workers)) as episodes:
            for episode in episodes:
                bar.update(1)
                if isinstance(episode, EpisodeFailure):
                    errors.append(episode)
                    bar.set_postfix(errors=len(errors), refresh=False)
                    continue
                buffer.append(episode)
                kept += episode.success or keep_failed
                steps += len(episode.steps) if episode.success or keep_failed else 0
                if len(buffer) >= shard_episodes:
                    _write_shard(out, manifest, buffer, keep_failed)
                    buffer = []
    finally:  # also on Ctrl-C: what finished is kept
        _write_shard(out, manifest, buffer, keep_failed)
    return RecordingRun(planned, planned - len(todo), len(todo), kept, steps, time.perf_counter() - started, errors)


def _open_manifest(out: Path, config: dict) -> dict:
    path = out / MANIFEST
    if not path.exists():
        return {"format": MANIFEST_FORMAT, **config, "shards": [], "episodes": []}
    manifest = read_manifest(out)
    differs = [f"{name} {manifest.get(name)!r} (asked {value!r})" for name, value in config.items()
               if manifest.get(name) != value]
    if differs:
        raise ValueError(f"{out} was recorded with other settings: {', '.join(differs)}; use another folder")
    return manifest


def _write_shard(out: Path, manifest: dict, episodes: list[EpisodeRecord], keep_failed: bool) -> None:
    if not episodes:
        return
    stored = [e for e in episodes if e.success or keep_failed]
    shard = None
    if stored:
        shard = f"shard-{len(manifest['shards']):05d}"
        rows = [step.to_row() for episode in stored for step in episode.steps]
        Dataset.from_list(rows, features=FEATURES).save_to_disk(str(out / shard))
        manifest["shards"].append(shard)
    for e in episodes:
        manifest["episodes"].append({"task_id": e.task_id, "trial": e.trial, "category": e.category,
                                     "success": e.success, "steps": len(e.steps),
                                     "shard": shard if e.success or keep_failed else None})
    # Write-then-rename: a crash never leaves a half-written manifest.
    tmp = out / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, out / MANIFEST)


def _record_all(agent_name: str, tasks: Sequence[Task], todo: list[tuple[Task, int]], image_size: int,
                workers: int) -> Iterator[EpisodeRecord | EpisodeFailure]:
    # One job per world: generating a world (~0.65 s) costs more than its short expert episodes, and a
    # worker generates each world it meets once. Largest jobs first, so no worker is left with a long tail.
    worlds: dict[int, list[tuple[str, int]]] = {}
    for task, trial in todo:
        worlds.setdefault(task.world_seed, []).append((task.id, trial))
    jobs = sorted(worlds.values(), key=len, reverse=True)
    for episodes in run_jobs(jobs, RecordingWorker, (agent_name, tuple(tasks), image_size), workers):
        yield from episodes


@dataclass(frozen=True)
class EpisodeFailure:
    """An episode that raised while recording: not stored, so a re-run tries it again."""

    task_id: str
    trial: int
    error: str


class RecordingWorker:
    """Builds its env and agent on first use and reuses them for every episode."""

    def __init__(self, agent_name: str, tasks: Sequence[Task], image_size: int):
        self.agent_name = agent_name
        self.tasks = {task.id: task for task in tasks}
        self.image_size = image_size
        self._env: CrafterEnv | None = None
        self._agent: Agent | None = None

    def run(self, keys: list[tuple[str, int]]) -> list[EpisodeRecord | EpisodeFailure]:
        episodes: list[EpisodeRecord | EpisodeFailure] = []

        def keep(finished: Finished) -> None:
            task_id, trial = finished.result.task_id, finished.result.trial
            if finished.error is not None:
                episodes.append(EpisodeFailure(task_id, trial, finished.error))
            else:
                episodes.append(finished.episode.hook.episode(finished.result.success))

        run_episodes([(self.tasks[task_id], trial) for task_id, trial in keys], self._episode, keep)
        return episodes

    def _episode(self, index: int, task: Task, trial: int) -> Episode:
        if self._agent is None:  # built here, so a broken agent is an error per episode
            self._agent = make_agent(self.agent_name)
            self._env = recording_env(self._agent, self.image_size)
        return Episode(self._env, self._agent, task, trial, StepRecorder(task, trial))


# --- reading a recording back -----------------------------------------------------------------
def read_manifest(directory: str | Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{directory} is not a recording: it has no {MANIFEST}")
    manifest = read_json(path, "record again into a new folder")
    if not isinstance(manifest, dict) or not all(isinstance(manifest.get(key), list) for key in ("shards", "episodes")):
        raise ValueError(f"{path} is damaged: it lacks the lists of shards and episodes; record again into a new folder")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{directory} holds a recording of format {manifest.get('format')}; this version reads "
                         f"format {MANIFEST_FORMAT} (steps with their text view): record it again into a new folder")
    return manifest


def load_trajectories(directory: str | Path) -> Dataset:
    """Every stored step of a recording, as one dataset (shards in the order they were written)."""
    manifest = read_manifest(directory)
    shards = [_load_shard(Path(directory) / shard) for shard in manifest["shards"]]
    return concatenate_datasets(shards) if shards else Dataset.from_list([], features=FEATURES)


def _load_shard(path: Path) -> Dataset:
    """One shard, read through once: a truncated or overwritten file fails here, naming itself."""
    try:
        shard = load_from_disk(str(path))
        shard.data.validate(full=True)
        return shard
    except (OSError, ValueError, FileNotFoundError) as error:
        raise ValueError(f"recording shard {path} is damaged ({error}); delete the recording folder and record "
                         f"again") from None


def episodes_of(dataset: Dataset, decode_images: bool = False) -> list[tuple[StepRecord, ...]]:
    """The steps grouped by episode, each in step order, the episodes in (task id, trial) order: the
    shards hold them in the order parallel workers finished them, and datasets built from a recording
    (and the models trained on them) must not depend on that. Undecoded images pass through as PNG bytes."""
    if not decode_images:
        dataset = dataset.cast_column("image", Image(decode=False))
    episodes: dict[tuple[str, int], list[StepRecord]] = {}
    for row in dataset:
        step = StepRecord.from_row(row)
        episodes.setdefault(step.key, []).append(step)
    return [tuple(sorted(episodes[key], key=lambda s: s.step)) for key in sorted(episodes)]
