"""A damaged GRPO checkpoint is named, not a bare JSON error."""

import json

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import save_file

from crossagent.train.grpo_checkpoint import (OPTIMIZER_TENSORS, OPTIMIZER_VALUES, STATE_FILE, load_checkpoint,
                                              split_tensors)


@pytest.mark.parametrize("damaged", [OPTIMIZER_VALUES, STATE_FILE])
def test_a_damaged_checkpoint_file_is_named(tmp_path, damaged):
    checkpoint = tmp_path / "checkpoint-000002"
    checkpoint.mkdir()
    optimizer = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
    tensors, values = split_tensors(optimizer.state_dict())
    save_file(tensors, checkpoint / OPTIMIZER_TENSORS)
    (checkpoint / OPTIMIZER_VALUES).write_text(json.dumps(values))
    (checkpoint / STATE_FILE).write_text('{"iteration": 2}')
    assert load_checkpoint(checkpoint, Accelerator(cpu=True), optimizer) == 2  # intact, it loads
    (checkpoint / damaged).write_text('{"iteration": ')
    with pytest.raises(ValueError, match=rf"{checkpoint / damaged} is damaged \(not JSON.*delete that checkpoint"):
        load_checkpoint(checkpoint, Accelerator(cpu=True), optimizer)
