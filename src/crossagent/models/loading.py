"""Load a vision-language model and its processor from a local checkpoint directory.

The tiny model and a real Qwen2-VL (or any model AutoModelForImageTextToText knows) load the
same way, from disk only: nothing is fetched from a hub.
"""

from __future__ import annotations

from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError, safe_open
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, PretrainedConfig, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
from transformers.processing_utils import ProcessorMixin
from transformers.utils import is_torchvision_available

from crossagent.models.processor import Qwen2VLImageTextProcessor

# Model types whose processor is Qwen2VLProcessor's shape (image processor + tokenizer + video processor).
QWEN2_VL_TYPES = ("qwen2_vl", "qwen2_5_vl")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the path and the problem."""


def checkpoint_config(path: str | Path) -> PretrainedConfig:
    """The checkpoint's config, or CheckpointError if `path` is not a loadable image-text checkpoint."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"model checkpoint {path}: no such directory")
    if not path.is_dir():
        raise CheckpointError(f"model checkpoint {path}: not a directory (a checkpoint is a directory with config.json)")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"model checkpoint {path}: no config.json, so not a transformers checkpoint")
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except (ValueError, OSError, KeyError, StrictDataclassError) as error:  # the last: a field of the wrong type
        raise CheckpointError(f"model checkpoint {path}: config.json cannot be read: {error}") from error
    if config.model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise CheckpointError(f"model checkpoint {path}: model type {config.model_type!r} is not an image-text-to-text "
                              f"model (supported: {', '.join(QWEN2_VL_TYPES)} and the other types of "
                              f"AutoModelForImageTextToText)")
    return config


def load_processor(path: str | Path, config: PretrainedConfig) -> ProcessorMixin:
    # Without torchvision, transformers cannot build Qwen2-VL's video processor; we never send video.
    if config.model_type in QWEN2_VL_TYPES and not is_torchvision_available():
        return Qwen2VLImageTextProcessor.from_pretrained(path, local_files_only=True)
    return AutoProcessor.from_pretrained(path, local_files_only=True)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(dtype: torch.dtype | str | None, device: str) -> torch.dtype:
    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
    return DTYPES[dtype]


def load_model(path: str | Path, device: str | None = None, dtype: torch.dtype | str | None = None
               ) -> tuple[PreTrainedModel, ProcessorMixin]:
    """(model in eval mode on `device`, processor). Defaults: CUDA if available, else CPU; bfloat16 on CUDA,
    float32 on CPU. Raises CheckpointError naming the path and what is wrong with it."""
    config = checkpoint_config(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = resolve_dtype(dtype, device)
    try:
        # device_map puts the weights straight on the device: no full copy in host memory first.
        model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True, dtype=dtype,
                                                            device_map=device)
        processor = load_processor(path, config)
    except SafetensorError as error:
        raise CheckpointError(f"model checkpoint {path}: {unreadable_weights(Path(path))}: {error} "
                              f"(truncated or corrupt?)") from error
    except (OSError, ValueError) as error:
        raise CheckpointError(f"model checkpoint {path}: {error}") from error
    return model.eval(), processor


def unreadable_weights(path: Path) -> str:
    """The weights file of `path` that safetensors cannot open (the loader's error names none)."""
    for weights in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(weights, "pt"):
                pass
        except SafetensorError:
            return weights.name
    return "a weights file"
