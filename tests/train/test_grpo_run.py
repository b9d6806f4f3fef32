"""GRPO end to end on the tiny model: lockstep rollouts, samplers, the log-prob pass, a run, its resume, the CLI."""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import shutil

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: nothing may come from a hub

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from crossagent.actions.chain import parse_reply  # noqa: E402
from crossagent.agents.model_policy import SampledTurn  # noqa: E402
from crossagent.models.loading import load_model  # noqa: E402
from crossagent.models.prompts import Turn, build_messages  # noqa: E402
from crossagent.tasks.suite import load_suite  # noqa: E402
from crossagent.train import grpo_cli  # noqa: E402
from crossagent.tasks.splits import train_tasks  # noqa: E402
from crossagent.train.grpo import GRPOConfig, practice_tasks, prepare_run, train  # noqa: E402
from crossagent.train.grpo_log import CURVES_PNG, LEVEL_CSV, LEVEL_SHARES_PNG, LOG_CSV, logged_turns  # noqa: E402
from crossagent.train.grpo_loss import reply_logprobs  # noqa: E402
from crossagent.train.turn_batches import encode_turns  # noqa: E402
from crossagent.models.generation import VISION_TOKENS, GenerationSettings, stop_token_ids  # noqa: E402
from crossagent.models.reply_request import ReplyRequest, Sample  # noqa: E402
from crossagent.models.samplers import LocalSampler, ServerSampler  # noqa: E402
from crossagent.train.rollouts import RolloutSettings, collect_rollouts, group_specs  # noqa: E402

from .conftest import plain_logprobs, tiny_config  # noqa: E402

WOOD, TABLE = "embodied.collect_wood.near.w0", "craft.place_table.kit.w45"


@pytest.fixture(scope="module")
def suite():
    return load_suite()


class ScriptedSampler:
    """Replies cycle through a script; records the size of every call (one call per round)."""

    def __init__(self, replies: list[str]):
        self.replies = replies
        self.calls: list[int] = []

    def sample(self, requests):
        self.calls.append(len(requests))
        return [Sample(self.replies[(len(self.calls) + row) % len(self.replies)], (7, 8, 9))
                for row in range(len(requests))]


def test_groups_start_identical_and_each_round_is_one_batched_call(suite):
    sampler = ScriptedSampler(["Skill: collect wood", "Action: move_left", "I think I will wait.", "Motion: dance"])
    settings = RolloutSettings(max_episode_steps=12, requery_every=3, call_cost=0.05)
    specs = group_specs([suite.task(WOOD), suite.task(TABLE)], group_size=2, first_trial=5)
    batch = collect_rollouts(specs, sampler, settings, seed=0)

    stats = batch.stats
    assert sampler.calls[0] == 4 and max(sampler.calls) == 4 and stats.generate_calls == len(sampler.calls)
    assert sum(sampler.calls) == len(batch.turns) == stats.replies and stats.generated_tokens == 3 * len(batch.turns)
    first_images = [episode.turns[0].images[-1] for episode in batch.episodes]
    assert np.array_equal(first_images[0], first_images[1]) and np.array_equal(first_images[2], first_images[3])
    assert not np.array_equal(first_images[0], first_images[2])
    assert batch.episodes[0].result.seed == batch.episodes[1].result.seed != batch.episodes[2].result.seed
    for episode in batch.episodes:
        result, turns = episode.result, episode.turns
        assert [turn.unparseable for turn in turns] == [parse_reply(turn.reply).error is not None for turn in turns]
        unparseable = sum(turn.unparseable for turn in turns)
        assert unparseable > 0  # "I think..." has no level tag, "Motion: dance" is malformed
        assert episode.episode_return == pytest.approx(1.0 * result.success - 0.1 * unparseable - 0.05 * len(turns))
        assert result.extra["calls"] == len(turns) and result.extra["unparseable_replies"] == unparseable
        assert result.steps <= 3 * len(turns)  # an executor runs at most k=3 steps per reply
        assert turns[0].messages[1]["content"][0]["text"] == f"Task: {episode.spec.task.instruction}"
    assert stats.env_steps == sum(e.result.steps for e in batch.episodes) and stats.steps_per_second > 0

    again = collect_rollouts(specs, ScriptedSampler(sampler.replies), settings, seed=0)
    assert [e.result.actions for e in again.episodes] == [e.result.actions for e in batch.episodes]


def test_a_skill_reply_that_solves_the_task_earns_the_success_reward(suite):
    batch = collect_rollouts(group_specs([suite.task(WOOD)], 2, 0), ScriptedSampler(["Skill: collect wood"]),
                             RolloutSettings(max_episode_steps=30, requery_every=4), seed=0)
    for episode in batch.episodes:
        assert episode.result.success and episode.episode_return == 1.0
        assert episode.result.extra["executed"].get("skill", 0) == episode.result.steps


def test_local_sampler_keeps_the_sampled_ids_and_never_samples_vision_tokens(tiny_path, monkeypatch):
    model, processor = load_model(tiny_path)
    sampler = LocalSampler(model, processor, GenerationSettings(max_new_tokens=6, do_sample=True, top_k=0))
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    def requests(seed: int) -> list[ReplyRequest]:
        return [ReplyRequest(*build_messages("mixed", "Collect wood.", [], image), seed=seed),
                ReplyRequest(*build_messages("raw", "Drink.", [], image), seed=seed + 1)]

    samples = sampler.sample(requests(1))
    assert samples == sampler.sample(requests(1)) != sampler.sample(requests(3))
    tokenizer = processor.tokenizer
    vision = {tokenizer.convert_tokens_to_ids(token) for token in VISION_TOKENS}
    for sample in samples:
        assert 1 <= len(sample.token_ids) <= 6 and not vision & set(sample.token_ids)
        stopped = sample.token_ids[-1] in stop_token_ids(model, processor)
        body = sample.token_ids[:-1] if stopped else sample.token_ids
        assert sample.text == tokenizer.decode(list(body), skip_special_tokens=False).strip()
    seen = {}
    generate = model.generate
    monkeypatch.setattr(model, "generate", lambda **kwargs: seen.update(kwargs) or generate(**kwargs))
    sampler.sample(requests(0)[:1])
    assert set(seen["suppress_tokens"]) == vision  # a sampled <|image_pad|> would break the next prompt


def test_server_sampler_posts_the_round_and_retokenises(tiny_path):
    _, processor = load_model(tiny_path)
    bodies = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        finish = "length" if body["seed"] == 4 else "stop"
        return httpx.Response(200, json={"choices": [{"message": {"content": " Action: noop "},
                                                      "finish_reason": finish}]})

    client = httpx.Client(transport=httpx.MockTransport(answer))
    sampler = ServerSampler("http://server/v1", "policy", processor.tokenizer, client=client)
    image = np.zeros((64, 64, 3), np.uint8)
    chat = build_messages("mixed", "Collect wood.", [], image)
    stopped, cut = sampler.sample([ReplyRequest(*chat, seed=3), ReplyRequest(*chat, seed=4)])
    noop_ids = processor.tokenizer.encode("Action: noop", add_special_tokens=False)
    end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert stopped == Sample("Action: noop", (*noop_ids, end)) and cut == Sample("Action: noop", tuple(noop_ids))
    assert sorted(body["seed"] for body in bodies) == [3, 4]  # each request's own seed
    assert bodies[0]["messages"][1]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_reply_logprobs_line_up_with_a_plain_forward_pass(tiny_path):
    model, processor = load_model(tiny_path)
    tokenizer = processor.tokenizer
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    short = build_messages("raw", "Collect wood.", [], image)
    long = build_messages("mixed", "Place a table.", [Turn(image, None, "Action: noop")], image)
    def ids(text):
        return tuple(tokenizer.encode(text, add_special_tokens=False))

    turns = [SampledTurn(*short, "x", ids("Action: noop"), False),
             SampledTurn(*long, "y", ids("Skill: collect wood<|im_end|>"), False)]
    with torch.no_grad():
        encoded = encode_turns(turns, [0, 1], model, processor, constrained=False)
        batched, mask, _ = reply_logprobs(model, [encoded[0], encoded[1]], temperature=1.0)
        for row, turn in enumerate(turns):
            expected = plain_logprobs(model, processor, turn, None, temperature=1.0)
            length = len(turn.token_ids)
            assert mask[row].sum() == length
            assert torch.allclose(batched[row, :length], expected, atol=1e-4)


@pytest.fixture(scope="module")
def first_run(tiny_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("grpo-run")
    result = train(tiny_config(tiny_path, out, updates=1))
    return out, result


@pytest.fixture(scope="module")
def uninterrupted_run(tiny_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("grpo-run-2")
    return out, train(tiny_config(tiny_path, out, updates=2))


TIMINGS = {"rollout_seconds", "update_seconds", "env_steps_per_second", "generated_tokens_per_second"}


def without_timings(metrics: dict) -> dict:
    return {name: value for name, value in metrics.items() if name not in TIMINGS}


def weights(path) -> dict[str, torch.Tensor]:
    model, _ = load_model(path)
    return dict(model.named_parameters())


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def csv_rows(out):
    with (out / LOG_CSV).open() as file:
        return list(csv.DictReader(file))


def test_a_tiny_run_writes_checkpoint_log_events_and_curves(first_run, tiny_path):
    out, result = first_run
    assert result.iterations == 1 and len(result.history) == 1
    metrics = result.history[0]
    assert metrics["episodes"] == 4 and 4 <= metrics["turns"] <= 4 * 6 and metrics["env_steps"] <= 4 * 6
    # One optimizer step, taken after the loss was computed: the policy is still the reference and the old policy,
    # so the KL is 0 up to float rounding (~1e-6 after tests/test_comparison.py ran in the same process; a wrong
    # reference would give orders of magnitude more).
    assert metrics["kl"] < 1e-5 and metrics["clip_fraction"] == 0 and metrics["entropy"] > 0
    assert metrics["env_steps_per_second"] > 0 and metrics["generated_tokens_per_second"] > 0
    checkpoint = out / "checkpoint-000001"
    assert sorted(path.name for path in checkpoint.iterdir()) == [
        "model", "optimizer.json", "optimizer.safetensors", "trainer_state.json"]
    assert (checkpoint / "model" / "model.safetensors").is_file()
    assert json.loads((checkpoint / "trainer_state.json").read_text())["iteration"] == 1
    rows = csv_rows(out)
    assert [row["iteration"] for row in rows] == ["1"] and float(rows[0]["mean_return"]) == metrics["mean_return"]
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / CURVES_PNG).stat().st_size > 0
    with (out / LEVEL_CSV).open() as file:
        shares = list(csv.DictReader(file))
    categories = {row["category"] for row in shares}
    assert categories and len(shares) == len(categories) * 9  # 5 executed levels (invalid too) + 4 contained
    for category in categories:  # executed shares partition the category's steps
        executed = [float(r["share"]) for r in shares if r["category"] == category and r["kind"] == "executed"]
        assert sum(executed) == pytest.approx(1.0)
    final = weights(result.final_model)  # the final model is a loadable checkpoint: the trained weights
    assert_same_weights(final, weights(checkpoint / "model"))
    initial = weights(tiny_path)
    assert not all(torch.equal(final[name], initial[name]) for name in final)


def test_the_policy_drifts_from_the_reference_after_a_step(uninterrupted_run):
    _, result = uninterrupted_run
    assert [m["iteration"] for m in result.history] == [1, 2]
    assert result.history[0]["kl"] < 1e-5 < 1e-3 < result.history[1]["kl"]  # 0 up to rounding, then a real drift


def test_a_resumed_run_repeats_an_uninterrupted_one(first_run, uninterrupted_run, tiny_path, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(first_run[0], out)
    config = tiny_config(tiny_path, out, updates=2)
    run = prepare_run(config)
    checkpoint = out / "checkpoint-000001"
    assert run.iteration == 1 and run.resumed_from == checkpoint
    assert_same_weights(dict(run.model.named_parameters()), weights(checkpoint / "model"))
    saved = load_file(checkpoint / "optimizer.safetensors")
    optimizer = run.optimizer.state_dict()
    assert optimizer["state"] and len(saved) == 3 * len(optimizer["state"])  # exp_avg, exp_avg_sq, step
    for param, state in optimizer["state"].items():
        assert float(state["step"]) == 1
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(state[name], saved[f"state.{param}.{name}"])
    assert optimizer["param_groups"][0]["betas"] == (0.9, 0.999) and optimizer["param_groups"][0]["lr"] == 1e-4
    del run

    result = train(config)
    assert result.iterations == 2 and [m["iteration"] for m in result.history] == [2]
    expected_out, expected = uninterrupted_run
    assert without_timings(result.history[0]) == without_timings(expected.history[1])
    assert_same_weights(weights(result.final_model), weights(expected.final_model))
    assert [row["iteration"] for row in csv_rows(out)] == ["1", "2"]
    assert logged_turns(out) == sum(metrics["turns"] for metrics in expected.history)  # the resumed one counted
    assert logged_turns(out, "trained_turns") == sum(metrics["trained_turns"] for metrics in expected.history)
    with (out / LEVEL_CSV).open() as file, (expected_out / LEVEL_CSV).open() as expected_file:
        assert list(csv.DictReader(file)) == list(csv.DictReader(expected_file))
    assert (out / "checkpoint-000002" / "trainer_state.json").is_file()


def test_fewer_updates_than_the_newest_checkpoint_is_refused(uninterrupted_run, tiny_path, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(uninterrupted_run[0], out)
    final = weights(out / "final")
    with pytest.raises(ValueError, match="checkpoint-000002 is iteration 2, past updates 1"):
        train(tiny_config(tiny_path, out, updates=1))
    assert_same_weights(weights(out / "final"), final)  # the final model is not replaced by an earlier one


class CreatesMarker:
    """A pickle that, when loaded, creates a file: what a crafted checkpoint would do with any code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_resuming_never_unpickles_a_file_of_the_run_folder(first_run, tiny_path, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(first_run[0], out)
    marker = tmp_path / "code-ran"
    payload = pickle.dumps(CreatesMarker(marker))
    checkpoint = out / "checkpoint-000001"
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "scheduler.bin",
                 "pytorch_model.bin", "training_args.bin", "model/pytorch_model.bin"):
        (checkpoint / name).write_bytes(payload)
    (out / "trainer_state.pkl").write_bytes(payload)
    pickle.loads(payload)
    assert marker.exists()  # the payload works
    marker.unlink()

    result = train(tiny_config(tiny_path, out, updates=1))  # resumes from checkpoint-000001, nothing left to do
    assert result.iterations == 1 and not marker.exists()
    (checkpoint / "optimizer.safetensors").unlink()  # a checkpoint of the old, pickled format is refused
    with pytest.raises(ValueError, match="pickled format"):
        prepare_run(tiny_config(tiny_path, out, updates=2))
    assert not marker.exists()


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    grpo_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["grpo", *argv])
    return args.run(args)


def test_cli_plots_a_run(first_run):
    out, _ = first_run
    (out / CURVES_PNG).unlink()
    assert run_cli("--plot", "--out", str(out)) == 0 and (out / CURVES_PNG).is_file()
    assert (out / LEVEL_SHARES_PNG).read_bytes()[:4] == b"\x89PNG"  # the per-category level shares of training


def test_cli_flags_cover_the_config():
    parser = argparse.ArgumentParser()
    grpo_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["grpo", "--model", "m", "--out", "o", "--kl-coef", "0.05", "--no-use-image",
                              "--use-text", "--rollout-server", "http://h/v1", "--served-model", "p"])
    config = grpo_cli.grpo_config(args)
    assert (config.kl_coef, config.use_image, config.use_text, config.group_size) == (0.05, False, True, 4)
    assert config.rollout_server == "http://h/v1" and config.output_dir == "o"
    help_text = " ".join(parser._subparsers._group_actions[0].choices["grpo"].format_help().split())
    assert "--kl-coef KL_COEF 0 skips the reference model (default: 0.01)" in help_text  # GRPOConfig's comment


def test_a_log_from_before_the_trained_turn_count_counts_none(first_run, tmp_path):
    rows = csv_rows(first_run[0])
    older = tmp_path / LOG_CSV
    with older.open("w", newline="") as file:  # a row written before the column existed
        writer = csv.DictWriter(file, fieldnames=[name for name in rows[0] if name != "trained_turns"],
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    assert logged_turns(tmp_path) == int(rows[0]["turns"]) and logged_turns(tmp_path, "trained_turns") is None


def test_the_warm_up_starts_at_zero_and_a_resumed_run_continues_it(tiny_path, tmp_path):
    """Linear warm-up over 4 optimizer steps (one per tiny iteration): the first step's rate is 0, so the weights
    stay the initial ones; a run resumed after it takes the second step at a quarter of the rate, as an
    uninterrupted run does, and ends with its weights."""
    first = tmp_path / "first"
    result = train(tiny_config(tiny_path, first, updates=1, warmup_steps=4))
    assert_same_weights(weights(result.final_model), weights(tiny_path))
    resumed = tmp_path / "resumed"
    shutil.copytree(first, resumed)
    run = prepare_run(tiny_config(tiny_path, resumed, updates=2, warmup_steps=4))
    assert run.iteration == 1 and [group["lr"] for group in run.optimizer.param_groups] == [1e-4 / 4]
    del run
    resumed_result = train(tiny_config(tiny_path, resumed, updates=2, warmup_steps=4))
    uninterrupted = train(tiny_config(tiny_path, tmp_path / "uninterrupted", updates=2, warmup_steps=4))
    assert_same_weights(weights(resumed_result.final_model), weights(uninterrupted.final_model))
    assert not all(torch.equal(tensor, weights(tiny_path)[name])
                   for name, tensor in weights(uninterrupted.final_model).items())


def test_a_negative_warm_up_is_refused(tiny_path, tmp_path):
    with pytest.raises(ValueError, match="warmup_steps must be 0"):
        tiny_config(tiny_path, tmp_path / "run", updates=1, warmup_steps=-1)


def test_zero_tasks_per_category_practises_every_training_task():
    """`--tasks-per-category 0` trains on the whole training split, as `compare` does; negative counts are refused."""
    every = train_tasks(load_suite())
    assert practice_tasks(GRPOConfig(model="m", output_dir="o", tasks_per_category=0)) == every
    assert len(practice_tasks(GRPOConfig(model="m", output_dir="o", tasks_per_category=2))) == 6
    with pytest.raises(ValueError, match="tasks_per_category must be 0"):
        GRPOConfig(model="m", output_dir="o", tasks_per_category=-1)
