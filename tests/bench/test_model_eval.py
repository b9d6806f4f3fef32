"""A model checkpoint on the benchmark: batched episodes stored per mode, resumable, keyed by what produced them."""

import argparse
from dataclasses import replace

import pytest
import torch

from crossagent.bench import model_eval
from crossagent.bench.model_eval import ModelEvaluation, evaluate_model
from crossagent.bench.results_store import RESULTS_FILE, ResultsStore
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.models.generation import GenerationSettings
from crossagent.models.reply_request import Sample
from crossagent.models.tiny_vlm import TinyVLMConfig, create_tiny_model
from crossagent.tasks.splits import heldout_tasks
from crossagent.tasks.suite import load_suite

SAMPLED = GenerationSettings(max_new_tokens=8, do_sample=True, temperature=1.0, seed=0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_num_threads(1)
    # Wide random weights: the untrained model's replies vary, so sampling differences show.
    return str(create_tiny_model(tmp_path_factory.mktemp("tiny") / "model", config=TinyVLMConfig(initializer_range=0.1)))


def tasks(count: int, budget: int = 12):
    return [replace(task, budget=budget) for task in load_suite().mini[:count]]


def evaluate(evaluation: ModelEvaluation, jobs, out):
    suite = load_suite()
    return evaluate_model(evaluation, jobs, suite.name, suite.mini_ids, out, progress=False)


def stored(out, agent=None) -> dict:
    with ResultsStore(out / RESULTS_FILE) as store:
        return {(row.agent, row.task_id, row.trial): row.actions for row in store.episodes(agent)}


def test_eval_model_stores_every_mode_and_resumes(tiny, tmp_path):
    evaluation = ModelEvaluation(tiny, "tiny", modes=("slow", "dynamic"), trials=1, slots=3,
                                 sampling=GenerationSettings(max_new_tokens=8))
    speeds = evaluate(evaluation, tasks(3), tmp_path)
    assert {mode: s.episodes for mode, s in speeds.items()} == {"slow": 3, "dynamic": 3}
    assert speeds["slow"].generate_calls <= 12 + 3  # one batched call per round for all waiting episodes
    assert speeds["slow"].replies >= 3 * 12 - 3
    with ResultsStore(tmp_path / RESULTS_FILE) as store:
        rows = store.episodes()
    assert sorted({row.agent for row in rows}) == ["tiny@dynamic", "tiny@slow"] and len(rows) == 6
    for row in rows:
        stats = row.extra
        assert stats["steps"] == row.steps and stats["calls"] >= 1
        assert sum(stats["executed"].values()) == row.steps  # every step counted, invalid replies included
    again = evaluate(evaluation, tasks(3), tmp_path)
    assert all(s.episodes == 0 for s in again.values())


class SeededSampler:
    """Stands in for the model so that episodes vary: each reply is a raw action picked by the request's
    seed alone (tests/models/test_model_policy.py shows the tiny model's batched samples equal its
    samples one at a time)."""

    def __init__(self, *model_and_settings):
        pass

    def sample(self, requests):
        return [Sample(f"Action: {ACTION_NAMES[request.seed % len(ACTION_NAMES)]}", (1,)) for request in requests]


def test_episodes_do_not_depend_on_slots_or_an_interruption(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(model_eval, "LocalSampler", SeededSampler)
    jobs = tasks(8, budget=8)
    runs = {}
    for slots in (1, 7, 30):
        out = tmp_path / f"slots-{slots}"
        evaluate(ModelEvaluation(tiny, "tiny", modes=("dynamic",), trials=1, slots=slots, sampling=SAMPLED), jobs, out)
        runs[slots] = stored(out)
    assert len(runs[1]) == 8 and runs[1] == runs[7] == runs[30]
    assert len({tuple(actions) for actions in runs[1].values()}) > 1  # sampled: episodes differ from each other
    resumed = tmp_path / "resumed"
    evaluation = ModelEvaluation(tiny, "tiny", modes=("dynamic",), trials=1, slots=3, sampling=SAMPLED)
    evaluate(evaluation, jobs[:3], resumed)  # the run stopped after three episodes
    assert evaluate(evaluation, jobs, resumed)["dynamic"].episodes == 5
    assert stored(resumed) == runs[1]


def test_another_checkpoint_or_temperature_is_evaluated_again(tiny, tmp_path, capsys):
    jobs = tasks(2, budget=6)
    evaluation = ModelEvaluation(tiny, "tiny", modes=("slow",), trials=1, sampling=SAMPLED)
    evaluate(evaluation, jobs, tmp_path)
    hotter = replace(evaluation, sampling=replace(SAMPLED, temperature=2.0))
    assert evaluate(hotter, jobs, tmp_path)["slow"].episodes == 2
    assert "sampling.temperature: 1.0 -> 2.0" in capsys.readouterr().err
    other = tmp_path / "other" / "tiny"
    create_tiny_model(other, config=TinyVLMConfig(initializer_range=0.1, seed=1))
    assert evaluate(replace(hotter, model=str(other)), jobs, tmp_path)["slow"].episodes == 2
    assert "checkpoint: " in capsys.readouterr().err
    with ResultsStore(tmp_path / RESULTS_FILE) as store:
        assert len(store.episodes()) == 2  # only the last model's episodes count


def test_unknown_modes_are_refused(tiny):
    with pytest.raises(ValueError, match="mode 'turbo'"):
        ModelEvaluation(tiny, "tiny", modes=("turbo",))


def test_cli_evaluates_the_heldout_tasks(monkeypatch, tmp_path):
    """`--suite heldout`: the tasks GRPO never trains on (how a GRPO run is evaluated)."""
    seen = {}

    class Stop(Exception):
        pass

    def evaluated(evaluation, tasks, *rest):
        seen.update(name=evaluation.name, modes=evaluation.modes, tasks=tasks)
        raise Stop

    monkeypatch.setattr(model_eval, "evaluate_model", evaluated)
    parser = argparse.ArgumentParser()
    model_eval.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval-model", "--model", "runs/grpo/final", "--out", str(tmp_path), "--suite", "heldout",
                              "--modes", "dynamic"])
    with pytest.raises(Stop):
        args.run(args)
    assert seen == {"name": "final", "modes": ("dynamic",), "tasks": heldout_tasks(load_suite())}


def test_both_prompt_styles_evaluate_and_a_change_of_style_is_evaluated_again(tiny, tmp_path, monkeypatch, capsys):
    """The policy asks in the evaluation's prompt style: compact has no system prompt, full does."""
    asked = []

    class Spy(model_eval.LocalSampler):
        def sample(self, requests):
            asked.extend(request.messages for request in requests)
            return super().sample(requests)

    monkeypatch.setattr(model_eval, "LocalSampler", Spy)
    jobs = tasks(2, budget=4)
    compact = ModelEvaluation(tiny, "tiny", modes=("slow", "dynamic"), trials=1, observe="both", sampling=SAMPLED,
                              prompt_style="compact")
    assert {mode: s.episodes for mode, s in evaluate(compact, jobs, tmp_path).items()} == {"slow": 2, "dynamic": 2}
    assert asked and all(messages[0]["role"] == "user" and messages[0]["content"][0]["text"].startswith("[mixed] ")
                         for messages in asked)
    asked.clear()
    assert evaluate(replace(compact, modes=("slow",), prompt_style="full"), jobs, tmp_path)["slow"].episodes == 2
    assert "prompt_style" in capsys.readouterr().err  # the stored episodes are keyed by it
    assert asked and all(messages[0]["role"] == "system" for messages in asked)
    with pytest.raises(ValueError, match="prompt style"):
        ModelEvaluation(tiny, "tiny", prompt_style="short")


def test_learned_executors_run_the_fast_mode_and_key_the_stored_episodes(tiny, tmp_path, capsys):
    from crossagent.executors.checkpoint import save_policy
    from crossagent.executors.registry import LEARNED_LEVELS, Executors
    from tests.executors.conftest import small_policy

    for level in LEARNED_LEVELS:
        save_policy(small_policy(level), tmp_path / "executors" / level)
    scripted = ModelEvaluation(tiny, "tiny", modes=("fast",), trials=1, sampling=SAMPLED)
    learned = replace(scripted, executors=Executors("learned", tmp_path / "executors"))
    assert "executors" not in scripted.agent_settings("fast", "c")  # stores from before stay valid
    assert set(learned.agent_settings("fast", "c")["executors"]) == set(LEARNED_LEVELS)
    speeds = evaluate(learned, tasks(2), tmp_path / "eval")
    assert speeds["fast"].episodes == 2
