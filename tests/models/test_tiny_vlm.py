"""The tiny Qwen2-VL: its size, its visual tokens, and a save/load round trip."""

import json
import shutil

import numpy as np
import pytest
import torch

from crossagent.cli import main
from crossagent.models.loading import CheckpointError, load_model
from crossagent.models.processor import save_processor
from crossagent.models.prompts import build_messages
from crossagent.models.tiny_vlm import TinyVLMConfig, build_tiny_model, mrope_section
from crossagent.models.tokenizer import IMAGE_PAD

from .conftest import TEST_CONFIG, observation


def model_inputs(processor, seed: int = 0):
    messages, images = build_messages("raw", "Collect wood.", [], observation(seed).image)
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(text=[text], images=images, return_tensors="pt")


def test_tiny_model_is_small_and_uses_our_token_ids(tiny):
    model, processor = tiny
    assert 1_000_000 <= model.num_parameters() <= 5_000_000
    tokenizer = processor.tokenizer
    assert model.config.image_token_id == tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    assert model.config.text_config.vocab_size == len(tokenizer)
    assert model.config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in model.generation_config.eos_token_id


@pytest.mark.parametrize("side", [64, 256])
def test_an_image_becomes_the_configured_number_of_visual_tokens(tiny, side):
    _, processor = tiny
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}]}], tokenize=False)
    inputs = processor(text=[text], images=[np.zeros((side, side, 3), np.uint8)], return_tensors="pt")
    visual_tokens = int((inputs["input_ids"] == processor.image_token_id).sum())
    assert visual_tokens == TEST_CONFIG.visual_tokens_per_image == 16


def test_save_then_load_gives_identical_logits(tmp_path):
    config = TinyVLMConfig(num_layers=1, vision_depth=1, initializer_range=0.1)
    model, processor = build_tiny_model(config=config)
    model.save_pretrained(tmp_path)
    save_processor(processor, tmp_path)
    loaded, loaded_processor = load_model(tmp_path, device="cpu")
    inputs = model_inputs(processor)
    reloaded_inputs = model_inputs(loaded_processor)
    for key in inputs:
        assert torch.equal(inputs[key], reloaded_inputs[key]), key
    with torch.inference_mode():
        assert torch.equal(model(**inputs).logits, loaded(**reloaded_inputs).logits)


def test_building_is_seeded():
    config = TinyVLMConfig(num_layers=1, vision_depth=1)
    first, _ = build_tiny_model(config=config)
    second, _ = build_tiny_model(config=config)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_config_checks_and_mrope_split():
    with pytest.raises(ValueError, match="multiple of patch_size"):
        TinyVLMConfig(image_size=100)
    with pytest.raises(ValueError, match="even size"):
        TinyVLMConfig(hidden_size=130, num_heads=4)
    assert mrope_section(128) == [16, 24, 24]  # Qwen2-VL's own split
    assert sum(mrope_section(32)) == 16


def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(CheckpointError, match=f"{missing}: no such directory"):
        load_model(missing)


def test_file_instead_of_directory(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a directory"):
        load_model(path)


def test_directory_without_config(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path}: no config.json"):
        load_model(tmp_path)


def test_unreadable_config(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json cannot be read"):
        load_model(tmp_path)


def test_text_only_model_type_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(CheckpointError, match="model type 'gpt2' is not an image-text-to-text model"):
        load_model(tmp_path)


def test_config_without_weights(tmp_path, tiny_path):
    (tmp_path / "config.json").write_text((tiny_path / "config.json").read_text())
    with pytest.raises(CheckpointError, match=str(tmp_path)):
        load_model(tmp_path)


def test_truncated_weights_name_the_file(tmp_path, tiny_path):
    checkpoint = shutil.copytree(tiny_path, tmp_path / "model")
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=f"{checkpoint}: model.safetensors: .*truncated or corrupt"):
        load_model(checkpoint)


def test_config_field_of_the_wrong_type_is_named(tmp_path, tiny_path):
    checkpoint = shutil.copytree(tiny_path, tmp_path / "model")
    config = json.loads((checkpoint / "config.json").read_text())
    config["text_config"]["hidden_size"] = "wide"
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"{checkpoint}: config.json cannot be read: .*'hidden_size'"):
        load_model(checkpoint)


@pytest.mark.parametrize("command", [["serve"], ["eval-model", "--out"]])
def test_commands_report_a_bad_checkpoint_in_one_line(tmp_path, tiny_path, capsys, command):
    if command[-1] == "--out":  # eval-model holds its output folder before it loads the model
        command = [*command, str(tmp_path / "eval")]
    checkpoint = shutil.copytree(tiny_path, tmp_path / "model")
    (checkpoint / "model.safetensors").write_bytes(b"\x10")
    assert main([*command, "--model", str(checkpoint)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"crossagent {command[0]}: error: model checkpoint {checkpoint}: model.safetensors")
    assert "Traceback" not in error


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)  # the CLI reports ValueErrors as usage errors
