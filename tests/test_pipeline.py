"""The pipeline: stages skip when done with the same settings, resume when unfinished, refuse a folder
built with other settings (naming them), run side by side in workers, and hold their run folder."""

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import psutil
import pytest

from crossagent.folder_lock import FolderBusy, hold_folder
from crossagent.pipeline import STAGE_FILE, Pipeline, Stage, StageMismatch, grpo_stage, run_pipeline
from crossagent.train.grpo import GRPOConfig


def count_and_write(folder: Path, text: str) -> dict:
    """A stage's work: appends a line to runs.txt (how often it worked) and writes its output."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "runs.txt").open("a") as file:
        file.write(f"{os.getpid()}\n")
    (folder / "output.txt").write_text(text)
    return {"wrote": text}


def fail(folder: Path) -> dict:
    raise RuntimeError("the stage broke")


def stage(tmp_path: Path, name: str = "make", text: str = "hello", work=count_and_write) -> Stage:
    folder = tmp_path / name
    return Stage(name, folder, {"text": text}, partial(work, folder, text) if work is count_and_write
                 else partial(work, folder))


def runs(tmp_path: Path, name: str = "make") -> int:
    return len((tmp_path / name / "runs.txt").read_text().splitlines())


def test_a_finished_stage_is_not_run_again(tmp_path):
    pipeline = Pipeline(tmp_path)
    assert pipeline.run(stage(tmp_path)) == {"wrote": "hello"}
    assert Pipeline(tmp_path).run(stage(tmp_path)) == {"wrote": "hello"}
    assert runs(tmp_path) == 1
    record = json.loads((tmp_path / "make" / STAGE_FILE).read_text())
    assert record["done"] and record["settings"] == {"text": "hello"} and record["result"] == {"wrote": "hello"}
    assert "make" in json.loads((tmp_path / "pipeline.json").read_text())["seconds"]


def test_other_settings_are_refused_naming_what_changed(tmp_path):
    Pipeline(tmp_path).run(stage(tmp_path))
    with pytest.raises(StageMismatch, match=r"built with other settings \(text: 'hello' -> 'bye'\)"):
        Pipeline(tmp_path).run(stage(tmp_path, text="bye"))
    assert (tmp_path / "make" / "output.txt").read_text() == "hello"


def test_an_unfinished_stage_runs_again_and_a_failed_one_is_not_marked_done(tmp_path):
    with pytest.raises(RuntimeError, match="the stage broke"):
        Pipeline(tmp_path).run(stage(tmp_path, work=fail))
    assert json.loads((tmp_path / "make" / STAGE_FILE).read_text())["done"] is False
    assert Pipeline(tmp_path).run(stage(tmp_path)) == {"wrote": "hello"}  # same settings: it resumes


def test_stages_run_side_by_side_and_then_adds_the_ready_ones(tmp_path):
    first, second = stage(tmp_path, "a", "1"), stage(tmp_path, "b", "2")
    later = stage(tmp_path, "c", "3")
    results = Pipeline(tmp_path, workers=2).run_all([first, second], then=lambda done, result: (
        [later] if done.name == "a" else []))
    assert results == {"a": {"wrote": "1"}, "b": {"wrote": "2"}, "c": {"wrote": "3"}}
    pids = {(tmp_path / name / "runs.txt").read_text() for name in "abc"}
    assert str(os.getpid()) + "\n" not in pids  # they worked in the pool's processes
    again = Pipeline(tmp_path, workers=2).run_all([first, second], then=lambda done, result: (
        [later] if done.name == "a" else []))
    assert again == results and all(runs(tmp_path, name) == 1 for name in "abc")


def test_a_run_folder_has_one_writer(tmp_path):
    with hold_folder(tmp_path):
        with hold_folder(tmp_path):  # the holder itself (and its children) may write
            pass
    with hold_folder(tmp_path):
        other = os.environ.pop("CROSSAGENT_HELD_FOLDERS")  # as another process would see it
        try:
            with pytest.raises(FolderBusy, match=rf"{tmp_path} is being written by .*\"pid\": {os.getpid()}"):
                run_pipeline(tmp_path, 1, lambda pipeline: None)
        finally:
            os.environ["CROSSAGENT_HELD_FOLDERS"] = other


def test_a_second_data_record_into_a_folder_being_recorded_is_refused_naming_the_holder(tmp_path):
    import subprocess
    import sys
    import time

    from crossagent.data.recording import record
    from crossagent.tasks.suite import load_suite

    folder = tmp_path / "recording"
    holder = subprocess.Popen([sys.executable, "-c", "import time\nfrom crossagent.folder_lock import hold_folder\n"
                               f"with hold_folder({str(folder)!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy, match=rf"being written by .*\"pid\": {holder.pid}"):
            record("expert", load_suite().mini[:1], 1, folder, progress=False)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert record("expert", load_suite().mini[:1], 1, folder, progress=False).recorded == 1  # free again


def test_a_damaged_stage_record_is_named(tmp_path):
    (tmp_path / "make").mkdir()
    (tmp_path / "make" / STAGE_FILE).write_text('{"name": "make", "sett')
    with pytest.raises(ValueError, match=rf"{tmp_path / 'make' / STAGE_FILE} is damaged \(not JSON"):
        Pipeline(tmp_path).run(stage(tmp_path))


def sleep_after_marking(folder: Path) -> dict:
    """A stage's work that outlives any test: marks that it started, then sleeps."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "started").write_text(str(os.getpid()))
    time.sleep(120)
    return {}


def test_a_killed_run_leaves_no_stage_running(tmp_path):
    script = ("import sys; from functools import partial; from pathlib import Path; "
              "from crossagent.pipeline import Pipeline, Stage; from tests.test_pipeline import sleep_after_marking; "
              "out = Path(sys.argv[1]); "
              "Pipeline(out, workers=2).run_all([Stage(n, out / n, {}, partial(sleep_after_marking, out / n)) "
              "for n in 'ab'])")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    main = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=root, env=env)
    deadline = time.monotonic() + 120
    while not all((tmp_path / name / "started").exists() for name in "ab"):
        assert main.poll() is None, "the run ended before its stages started"
        assert time.monotonic() < deadline, "the stages did not start within 120 s"
        time.sleep(0.2)
    workers = psutil.Process(main.pid).children(recursive=True)
    assert {int((tmp_path / name / "started").read_text()) for name in "ab"} <= {p.pid for p in workers}
    os.kill(main.pid, signal.SIGKILL)
    main.wait()
    _, alive = psutil.wait_procs(workers, timeout=10)
    left = [(p.pid, p.cmdline()) for p in alive]
    for process in alive:  # not to leave them to the next test either
        process.kill()
    assert left == [], f"left behind: {left}"


@pytest.mark.parametrize("option, value", [("update_turns_per_episode", 8), ("settled_task_weight", 0.25),
                                           ("warmup_steps", 4), ("expert_prefix_share", 0.5),
                                           ("expert_prefix_earliest", 0.0), ("expert_prefix_kinds", "failing"),
                                           ("demonstration_coef", 0.5)])
def test_the_grpo_stage_keys_an_option_added_later_only_when_set(tmp_path, option, value):
    """A GRPO folder built before such an option existed ran as its default does (every turn trained on, every
    task drawn alike): the default adds nothing to the stage's settings, so such folders stay valid; another value
    changes the fingerprint."""
    start = Stage("SFT", tmp_path / "sft", {"steps": 1}, lambda: {})
    default = grpo_stage("GRPO", tmp_path / "grpo", start, GRPOConfig(model="", output_dir=""), ())
    changed = grpo_stage("GRPO", tmp_path / "grpo", start, GRPOConfig(model="", output_dir="", **{option: value}), ())
    assert option not in default.settings["grpo"]
    assert changed.settings["grpo"][option] == value
    assert changed.fingerprint != default.fingerprint


def test_a_grpo_stage_names_its_demonstrations_by_the_labelling_stage_not_their_path(tmp_path):
    """A run folder moved elsewhere keeps its GRPO stage; other labels (or none) are another stage."""
    start = Stage("SFT", tmp_path / "sft", {"steps": 1}, lambda: {})
    labels, other_labels = (Stage("label", tmp_path / "labelled", {"keep_noop": k}, lambda: {}) for k in (0.0, 0.1))

    def stage(folder: Path, labelled: Stage | None) -> Stage:
        config = GRPOConfig(model="", output_dir="", demonstrations_per_step=4,
                            demonstration_dataset=str(folder / "labelled" / "mix"))
        return grpo_stage("GRPO", folder / "grpo", start, config, (), labelled)

    here, moved = stage(tmp_path / "a", labels), stage(tmp_path / "b", labels)
    assert here.fingerprint == moved.fingerprint and here.settings["demonstrations"]["dataset"] == "mix"
    assert stage(tmp_path / "a", other_labels).fingerprint != here.fingerprint
    assert here.settings["grpo"]["demonstrations_per_step"] == 4
    assert "demonstration_dataset" not in here.settings["grpo"]
    with pytest.raises(ValueError, match="needs the labelling stage"):
        stage(tmp_path / "a", None)


def test_a_growing_setting_continues_the_stage_and_a_following_one_redoes_it(tmp_path):
    """GRPO asked for more iterations continues its folder; the evaluation of the grown model is redone. Any other
    change, and a growing setting lowered, is still refused."""
    def grown(iterations: int, seed: int = 0) -> Stage:
        return Stage("train", tmp_path / "train", {"grpo": {"updates": iterations, "seed": seed}},
                     partial(count_and_write, tmp_path / "train", str(iterations)), grows=("grpo", "updates"))

    def evaluation(model: Stage, trials: int = 2) -> Stage:
        return Stage("evaluate", tmp_path / "evaluate", {"model": model.fingerprint, "trials": trials},
                     partial(count_and_write, tmp_path / "evaluate", model.fingerprint), follows=("model",))

    pipeline = Pipeline(tmp_path)
    pipeline.run(grown(2))
    pipeline.run(evaluation(grown(2)))
    assert pipeline.run(grown(5)) == {"wrote": "5"} and runs(tmp_path, "train") == 2
    assert pipeline.run(evaluation(grown(5))) == {"wrote": grown(5).fingerprint}
    assert runs(tmp_path, "evaluate") == 2
    assert pipeline.run(grown(5)) == {"wrote": "5"} and runs(tmp_path, "train") == 2  # done: not run again
    with pytest.raises(StageMismatch, match=r"grpo.updates: 5 -> 3"):
        pipeline.run(grown(3))
    with pytest.raises(StageMismatch, match=r"grpo.seed: 0 -> 1"):
        pipeline.run(grown(6, seed=1))
    with pytest.raises(StageMismatch, match=r"trials: 2 -> 3"):
        pipeline.run(evaluation(grown(5), trials=3))


def test_growing_adds_its_time_and_a_redone_evaluation_is_timed_again(tmp_path, monkeypatch):
    """pipeline.json's seconds: a grown stage's are the first run's plus the growth's; a redone evaluation's are
    its new run's; a stage found done keeps its first measurement."""
    import crossagent.pipeline as pipeline_module

    seconds = iter([10.0, 20.0, 3.0, 4.0])
    monkeypatch.setattr(pipeline_module, "_timed", lambda work: (work(), next(seconds)))

    def grown(iterations: int) -> Stage:
        return Stage("train", tmp_path / "train", {"grpo": {"updates": iterations}},
                     partial(count_and_write, tmp_path / "train", str(iterations)), grows=("grpo", "updates"))

    def evaluation(model: Stage) -> Stage:
        return Stage("evaluate", tmp_path / "evaluate", {"model": model.fingerprint},
                     partial(count_and_write, tmp_path / "evaluate", model.fingerprint), follows=("model",))

    pipeline = Pipeline(tmp_path)
    pipeline.run(grown(2))
    pipeline.run(evaluation(grown(2)))
    pipeline.run(grown(5))
    pipeline.run(evaluation(grown(5)))
    Pipeline(tmp_path).run(grown(5))  # done: nothing timed
    assert json.loads((tmp_path / "pipeline.json").read_text())["seconds"] == {"train": 13.0, "evaluate": 4.0}
