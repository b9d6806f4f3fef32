"""Demonstrations in the GRPO update: the SFT loss on a labelled data set joins every optimizer step."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from crossagent.models.loading import load_model
from crossagent.train.demonstrations import Demonstrations, load_demonstrations
from crossagent.train.grpo import GRPOConfig, train
from crossagent.train.grpo_log import LOG_CSV
from crossagent.train.sft import FinalReplyCollator, reply_loss

from .conftest import demonstration, save_demonstrations, tiny_config

@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return save_demonstrations(tmp_path_factory.mktemp("demonstrations") / "mix")


def dataset_loss(model_path, dataset) -> float:
    model, processor = load_model(model_path)
    batch = FinalReplyCollator(processor, 4096)([demonstration(i) for i in range(6)])
    with torch.no_grad():
        return reply_loss(model, dict(batch))[0].item()


def log_rows(out) -> list[dict]:
    with (out / LOG_CSV).open() as file:
        return list(csv.DictReader(file))


def test_demonstrations_pull_the_policy_to_the_data_and_are_counted(tiny_path, dataset, tmp_path):
    runs = {}
    for per_step in (0, 8):
        out = tmp_path / f"demonstrations-{per_step}"
        result = train(tiny_config(tiny_path, out, updates=2, learning_rate=2e-3, demonstrations_per_step=per_step,
                                   demonstration_dataset=str(dataset) if per_step else None))
        runs[per_step] = (out, result)
    start = dataset_loss(tiny_path, dataset)
    without, with_ = (dataset_loss(runs[n][1].final_model, dataset) for n in (0, 8))
    # The same rollouts and seeds; only the demonstrations differ. Measured: 7.01 at the start, 6.93 without, 5.54 with.
    assert with_ < min(start, without) - 1.0
    rows = log_rows(runs[8][0])
    # tiny_config: one optimizer step per iteration, so 8 examples per iteration, each loss a finite number.
    assert [int(row["demonstrations"]) for row in rows] == [8, 8]
    assert all(np.isfinite(float(row["demonstration_loss"])) for row in rows)
    assert float(rows[1]["demonstration_loss"]) < float(rows[0]["demonstration_loss"])
    assert [(row["demonstrations"], row["demonstration_loss"]) for row in log_rows(runs[0][0])] == [("0", "")] * 2


def test_each_step_and_process_draws_its_own_examples_the_same_way_every_time(tiny_path, dataset):
    _, processor = load_model(tiny_path)
    demonstrations = Demonstrations(load_demonstrations(str(dataset)), processor, per_step=3)
    first = demonstrations.rows(0, 1, 0, 0, 0)
    assert len(first) == 3 and all(0 <= row < 6 for row in first)
    assert demonstrations.rows(0, 1, 0, 0, 0) == first  # a resumed run draws what an uninterrupted one did
    draws = {tuple(demonstrations.rows(0, 1, 0, step, rank)) for step in range(4) for rank in range(2)}
    assert len(draws) > 4  # steps and processes draw apart (8 draws of 3 from 6 examples)


def test_demonstrations_need_a_data_set_that_exists(tmp_path):
    with pytest.raises(ValueError, match="needs demonstration_dataset"):
        GRPOConfig(model="m", output_dir="o", demonstrations_per_step=2)
    with pytest.raises(ValueError, match="must be 0 or more"):
        GRPOConfig(model="m", output_dir="o", demonstration_coef=-1.0)
    with pytest.raises(FileNotFoundError, match=f"no demonstration data set at {tmp_path / 'missing'}"):
        load_demonstrations(str(tmp_path / "missing"))
