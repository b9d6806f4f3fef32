"""The pipeline every end-to-end command is a preset of: resumable stages in one run folder.

record -> label -> build the model -> SFT -> GRPO -> evaluate -> report. A stage is a folder, its
settings, and the work that fills the folder. The folder's `stage.json` holds the settings (with
their fingerprint, crossagent.fingerprint) and, once the work returned, its result. A re-run
returns the stored result of a finished stage without working again, resumes an unfinished one
(the recorder, SFT, GRPO and evaluation each resume their own partial work), and refuses a
folder that holds a stage built with other settings, naming them. A stage's settings name the
fingerprints of the stages it reads, so changing an early setting refuses every later stage's
folder too. Two changes are taken up in place instead (`Stage.grows`, `Stage.follows`): more GRPO
iterations continue the run from its checkpoints, and the evaluation of a model so grown is redone.
Evaluation results are keyed the same way, per episode (bench.results_store).

`crossagent demo` (demo.py) and `crossagent compare` (comparison.py) are presets: a settings
dataclass and the stages they run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from crossagent.envs.text_view import TEXT_VIEW_VERSION
from crossagent.fingerprint import changes, directory_hash, fingerprint, plain
from crossagent.folder_lock import hold_folder
from crossagent.json_files import read_json
from crossagent.progress import quiet_library_bars

STAGE_FILE = "stage.json"
RUN_FILE = "pipeline.json"  # per stage: wall seconds of the work that built its folder (a grown one: all of it)


class StageMismatch(ValueError):
    """A stage folder built with other settings."""


@dataclass(frozen=True)
class Stage:
    name: str
    folder: Path
    settings: dict  # everything that changes what the stage writes (plain data)
    work: Callable[[], dict]  # fills the folder (resuming what it finds) and returns a JSON-able result
    # A setting (its path in `settings`) that may rise: the work continues the folder's (GRPO's iterations).
    grows: tuple[str, ...] = ()
    # A setting naming the stage read, which may change: the work is redone (an evaluation of a grown model).
    # Safe because the stage read runs first: any change it could not take up was refused there.
    follows: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.settings)


class Pipeline:
    """A run folder: runs stages, one at a time or `workers` at a time in spawned processes."""

    def __init__(self, out: str | Path, workers: int = 1, threads_per_worker: int = 1):
        self.out = Path(out)
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self.facts = read_json(self.out / RUN_FILE) if (self.out / RUN_FILE).exists() else {}
        self.grown: set[str] = set()  # stages claimed to continue their finished work (a grown setting)

    def run(self, stage: Stage) -> dict:
        """The stage's result: stored if the stage finished with these settings, else from its work."""
        return self.run_all([stage])[stage.name]

    def run_all(self, stages: Sequence[Stage], then: Callable[[Stage, dict], Sequence[Stage]] = lambda *_: ()
                ) -> dict[str, dict]:
        """Independent stages, `workers` at a time; `then(stage, result)` may add stages that become ready
        when one ends (the GRPO run once its SFT model is). Returns every stage's result by name."""
        results: dict[str, dict] = {}
        todo = list(stages)
        if self.workers == 1:
            while todo:
                stage = todo.pop(0)
                results[stage.name] = self._result(stage)
                todo += then(stage, results[stage.name])
            return results
        with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_stage_worker, initargs=(os.getpid(), self.threads_per_worker)
                                 ) as pool:
            running = {}
            while todo or running:
                for stage in todo:
                    found = finished_result(stage)
                    if found is None:
                        running[pool.submit(_timed, self._claim(stage).work)] = stage
                    else:
                        print(f"== {stage.name}: done before ({stage.folder})", flush=True)
                        results[stage.name] = found
                        todo += then(stage, found)  # appended while iterating: visited below
                todo = []
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    stage = running.pop(future)
                    result, seconds = future.result()
                    self._finish(stage, result, seconds)
                    results[stage.name] = result
                    todo += then(stage, result)
        return results

    def _result(self, stage: Stage) -> dict:
        found = finished_result(stage)
        if found is not None:
            print(f"== {stage.name}: done before ({stage.folder})", flush=True)
            return found
        self._claim(stage)
        result, seconds = _timed(stage.work)
        self._finish(stage, result, seconds)
        return result

    def _claim(self, stage: Stage) -> Stage:
        """Refuse a folder built with other settings; mark the stage started."""
        stored = stage_record(stage.folder)
        if stored is not None:
            differ = changes(*without_changes_taken_up(stage, stored["settings"]))
            if differ:
                raise StageMismatch(f"{stage.folder} holds stage '{stored['name']}' built with other settings "
                                    f"({'; '.join(differ)}); use another --out, or delete that folder to rebuild it")
            if stored.get("done") and stage.grows and _get(stored["settings"], stage.grows) != _get(
                    plain(stage.settings), stage.grows):
                self.grown.add(stage.name)
        print(f"\n== {stage.name}", flush=True)
        _write_record(stage, done=False)
        return stage

    def _finish(self, stage: Stage, result: dict, seconds: float) -> None:
        _write_record(stage, done=True, result=result)
        # The first completed run of a stage is its measurement (a resumed re-run only finds it done); growing
        # finished work adds its time; a stage redone (an evaluation of a grown model) is measured again.
        measured = self.facts.setdefault("seconds", {})
        if stage.name in self.grown:
            self.grown.discard(stage.name)
            measured[stage.name] = round(measured.get(stage.name, 0.0) + seconds, 1)
        elif stage.follows:
            measured[stage.name] = round(seconds, 1)
        else:
            measured.setdefault(stage.name, round(seconds, 1))
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / RUN_FILE).write_text(json.dumps(self.facts, indent=1) + "\n")
        print(f"   done: {stage.name} ({seconds:.0f} s)", flush=True)


def stage_record(folder: Path) -> dict | None:
    path = folder / STAGE_FILE
    return read_json(path, "delete that folder to rebuild the stage") if path.exists() else None


def without_changes_taken_up(stage: Stage, stored: dict) -> tuple[dict, dict]:
    """The stored and new settings, with the changes the stage takes up in place made equal."""
    stored, new = json.loads(json.dumps(stored)), plain(stage.settings)
    if stage.grows and _get(stored, stage.grows) is not None and _get(stored, stage.grows) <= _get(new, stage.grows):
        _set(stored, stage.grows, _get(new, stage.grows))
    if stage.follows and _get(stored, stage.follows) is not None:
        _set(stored, stage.follows, _get(new, stage.follows))
    return stored, new


def _get(settings: dict, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(settings, dict) or key not in settings:
            return None
        settings = settings[key]
    return settings


def _set(settings: dict, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        settings = settings[key]
    settings[path[-1]] = value


def finished_result(stage: Stage) -> dict | None:
    """The stored result if the stage finished with exactly these settings."""
    stored = stage_record(stage.folder)
    if stored is None or not stored.get("done") or stored.get("fingerprint") != stage.fingerprint:
        return None
    return stored["result"]


def _write_record(stage: Stage, done: bool, result: dict | None = None) -> None:
    stage.folder.mkdir(parents=True, exist_ok=True)
    record = {"name": stage.name, "fingerprint": stage.fingerprint, "settings": plain(stage.settings), "done": done,
              "result": result}
    tmp = stage.folder / f"{STAGE_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=1, default=str) + "\n")
    tmp.replace(stage.folder / STAGE_FILE)


def _timed(work: Callable[[], dict]) -> tuple[dict, float]:
    started = time.perf_counter()
    return work(), time.perf_counter() - started


def _start_stage_worker(parent: int, threads: int) -> None:
    from crossagent.bench.pool import exit_when_orphaned
    from crossagent.models.threads import use_threads

    exit_when_orphaned(parent)  # a killed run leaves no stage running
    use_threads(threads)


# --- the stages -------------------------------------------------------------------------------
def record_stage(out: Path, tasks, trials: int, workers: int, agent: str = "expert") -> Stage:
    settings = {"agent": agent, "tasks": [task.id for task in tasks], "task_definitions": fingerprint(
        [task.to_dict() for task in tasks]), "trials": trials, "text_view": TEXT_VIEW_VERSION}
    return Stage("record expert trajectories", out / "data" / "recording", settings,
                 partial(_record, agent, tuple(tasks), trials, out / "data" / "recording", workers))


def _record(agent: str, tasks, trials: int, folder: Path, workers: int) -> dict:
    from crossagent.data.recording import record

    quiet_library_bars()
    run = record(agent, tasks, trials, folder, workers=workers)
    if run.errors:
        first = run.errors[0]
        raise RuntimeError(f"{len(run.errors)} recorded episodes raised (not stored; a re-run retries them); first: "
                           f"{first.task_id} trial {first.trial}:\n{first.error}")
    result = asdict(run)
    result.pop("errors")
    return result


def label_stage(out: Path, recording: Stage, build, formats: Sequence[str], mix: dict[str, float] | None,
                workers: int = 1, latent: Path | None = None) -> Stage:
    """`latent`: the latent codebook's checkpoint, for the latent format (a stage of its own, `labelled-latent`)."""
    # `workers` (processes verifying the mixed format's levels) does not change what the stage writes.
    settings = {"recording": recording.fingerprint, "build": plain(build), "formats": list(formats), "mix": mix,
                **({"latent": directory_hash(latent)} if latent else {})}
    name, folder = ("label the latent level", out / "data" / "labelled-latent") if latent else (
        "label into every level", out / "data" / "labelled")
    return Stage(name, folder, settings, partial(_label, recording.folder, tuple(formats), folder, mix, build, workers,
                                                 latent))


def _label(recording: Path, formats, folder: Path, mix, build, workers: int, latent: Path | None) -> dict:
    from crossagent.data.builders import label

    quiet_library_bars()
    report = label(recording, list(formats), folder, mix, build, workers=workers, latent=latent)
    return {"examples": {name: counts["kept"] for name, counts in report["datasets"].items()},
            "rejected": {name: counts["rejected"] for name, counts in report["datasets"].items()}}


def expert_data_stage(name: str, folder: Path, dataset: Path, labels: Stage, grpo: Stage) -> Stage:
    """`dataset` (a data set `labels` wrote) and the failure demonstrations of the GRPO run `grpo` (the expert's
    solutions of its groups that solved nothing), as one data set in `folder`/`dataset.name`: the data GRPO learned
    from, for an SFT to train on."""
    settings = {"labels": labels.fingerprint, "dataset": dataset.name, "grpo": grpo.fingerprint}
    return Stage(name, folder, settings, partial(_expert_data, dataset, Path(grpo.folder), folder / dataset.name))


def _expert_data(dataset: Path, grpo_folder: Path, out: Path) -> dict:
    from datasets import concatenate_datasets, load_from_disk

    from crossagent.train.failure_demonstrations import POOL_DIR

    parts = sorted((grpo_folder / POOL_DIR).glob("iteration_*"))
    if not parts:
        raise ValueError(f"{grpo_folder} has no failure demonstrations ({POOL_DIR}/): its GRPO run needs "
                         "failure_demonstrations_per_step > 0 and a group that solved nothing")
    start = load_from_disk(str(dataset))
    data = concatenate_datasets([start, *(load_from_disk(str(part)) for part in parts)])
    data.save_to_disk(str(out))
    return {"examples": len(data), "failure_demonstrations": len(data) - len(start)}


def tiny_model_stage(out: Path, config=None, latent_codes: bool = False) -> Stage:
    """`latent_codes`: the model for the latent format, whose tokenizer also has the code tokens (`init-latent`)."""
    from crossagent.models.tiny_vlm import TinyVLMConfig

    config = config or TinyVLMConfig()
    name, folder = ("build the tiny model with latent codes", out / "model" / "init-latent") if latent_codes else (
        "build the tiny model", out / "model" / "init")
    return Stage(name, folder, {"tiny_config": plain(config), **({"latent_codes": True} if latent_codes else {})},
                 partial(_tiny_model, folder, config, latent_codes))


def _tiny_model(folder: Path, config, latent_codes: bool) -> dict:
    from crossagent.models.tiny_vlm import create_tiny_model

    return {"model": str(create_tiny_model(folder, config=config, latent_codes=latent_codes))}


def sft_stage(name: str, folder: Path, model: Stage, dataset: Path, labels: Stage, sft, weights: str = "") -> Stage:
    """`sft`: SFTSettings; its model, dataset and output_dir come from the stages. `weights`: the subfolder of
    `model`'s folder to start from ("final" to continue a trained model; "" for a built one)."""
    sft = replace(sft, model=str(Path(model.folder) / weights), dataset=str(dataset), output_dir=str(folder))
    settings = {"model": model.fingerprint, **({"weights": weights} if weights else {}), "labels": labels.fingerprint,
                "dataset": dataset.name, "sft": {key: value for key, value in plain(sft).items()
                        if key not in ("model", "dataset", "output_dir", "resume", "progress")}}
    return Stage(name, folder, settings, partial(_sft, sft))


def _sft(sft) -> dict:
    from crossagent.train.sft import run_sft

    quiet_library_bars()
    return asdict(run_sft(sft))


# GRPO options added later, each with the default that is how runs behaved before it existed
GRPO_OPTIONS_ADDED_LATER = {"update_turns_per_episode": 0, "settled_task_weight": 1.0, "warmup_steps": 0,
                            "expert_prefix_share": 0.0, "expert_prefix_earliest": 0.5, "expert_prefix_kinds": "all",
                            "demonstrations_per_step": 0, "demonstration_coef": 1.0, "step_advantage_coef": 0.0,
                            "step_discount": 0.95, "failure_demonstrations_per_step": 0}


def grpo_stage(name: str, folder: Path, start: Stage, grpo_config, tasks, labels: Stage | None = None) -> Stage:
    """`grpo_config`: GRPOConfig; its model and output_dir come from the stages. `labels`: the labelling stage that
    wrote its demonstration data set, if it has one (the set is named by that stage's fingerprint, not its path)."""
    if bool(grpo_config.demonstration_dataset) != bool(labels):
        raise ValueError("a GRPO stage with a demonstration data set needs the labelling stage that wrote it")
    config = replace(grpo_config, model=str(Path(start.folder) / "final"), output_dir=str(folder))
    # An option added later, at the default that is how runs behaved before it, is left out: older folders stay valid.
    grpo = {key: value for key, value in plain(config).items()
            if key not in ("model", "output_dir", "demonstration_dataset")
            and (key not in GRPO_OPTIONS_ADDED_LATER or value != GRPO_OPTIONS_ADDED_LATER[key])}
    settings = {"start": start.fingerprint, "tasks": [task.id for task in tasks], "grpo": grpo,
                **({"demonstrations": {"labels": labels.fingerprint,
                                       "dataset": Path(config.demonstration_dataset).name}} if labels else {})}
    # More iterations resume from the run's checkpoints: every iteration re-seeds from (seed, iteration), so the
    # grown run is the run that would have had that many iterations from the start.
    return Stage(name, folder, settings, partial(_grpo, config, tuple(tasks)), grows=("grpo", "updates"))


def _grpo(config, tasks) -> dict:
    from crossagent.train import grpo
    from crossagent.train.grpo_log import logged_turns

    result = grpo.train(config, tasks)
    # From the log, not the result's history: a resumed run's history lacks the iterations before the resume.
    return {"iterations": result.iterations, "final_model": result.final_model,
            "turns": logged_turns(Path(config.output_dir)),
            "trained_turns": logged_turns(Path(config.output_dir), "trained_turns"),
            "demonstrations": sum(logged_turns(Path(config.output_dir), column) for column, per_step in (
                ("demonstrations", config.demonstrations_per_step),
                ("failure_demonstrations", config.failure_demonstrations_per_step)) if per_step)}


def evaluation_stage(name: str, out: Path, model_folder: Path, model: Stage, evaluation, tasks, suite) -> Stage:
    """`evaluation`: a ModelEvaluation of the model that `model` built in `model_folder`. Episodes are stored
    in out/results.sqlite; the stage folder holds only its record."""
    evaluation = replace(evaluation, model=str(model_folder))
    settings = {"model": model.fingerprint, "evaluation": {key: value for key, value in plain(evaluation).items()
                                                           if key not in ("model", "slots")},
                "tasks": [task.id for task in tasks], "suite": suite.name}
    # A changed model (a GRPO run grown in place) is evaluated again: the results store keys its episodes by the
    # checkpoint's content, so the old model's episodes are not counted for the new one.
    return Stage(name, out / "evaluations" / re.sub(r"[^A-Za-z0-9._-]+", "-", evaluation.name).strip("-"), settings,
                 partial(_evaluate, evaluation, tuple(tasks), suite.name, tuple(suite.mini_ids), out),
                 follows=("model",))


def _evaluate(evaluation, tasks, suite_name: str, mini_ids, out: Path) -> dict:
    from crossagent.bench.model_eval import evaluate_model

    quiet_library_bars()
    speeds = evaluate_model(evaluation, tasks, suite_name, mini_ids, out, progress=True)
    return {mode: {**asdict(speed), "steps_per_second": speed.steps_per_second,
                   "tokens_per_second": speed.tokens_per_second} for mode, speed in speeds.items()}


def benchmark_stage(out: Path, agent: str, tasks, trials: int, suite, workers: int) -> Stage:
    settings = {"agent": agent, "tasks": [task.id for task in tasks], "trials": trials, "suite": suite.name}
    return Stage(f"benchmark {agent}", out / "evaluations" / agent, settings,
                 partial(_benchmark, agent, tuple(tasks), trials, workers, out, suite.name, tuple(suite.mini_ids)))


def _benchmark(agent: str, tasks, trials: int, workers: int, out: Path, suite_name: str, mini_ids) -> dict:
    from crossagent.bench.results_store import RESULTS_FILE
    from crossagent.bench.runner import run_benchmark

    run = run_benchmark(agent, tasks, trials, workers, out / RESULTS_FILE, suite_name, mini_ids=mini_ids)
    if run.errors:
        raise RuntimeError(f"{run.errors} episodes of {agent} raised; see {out / RESULTS_FILE}")
    return {"planned": run.planned, "ran": run.ran, "skipped": run.skipped}


def run_pipeline(out: Path, workers: int, body: Callable[[Pipeline], Any], threads_per_worker: int = 1) -> Any:
    """Hold the run folder, then `body(pipeline)`."""
    with hold_folder(out):
        return body(Pipeline(out, workers, threads_per_worker))
