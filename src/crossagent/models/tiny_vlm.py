"""A tiny Qwen2-VL with random weights and a locally trained tokenizer, for CPU work.

Same architecture and processor as the real Qwen2-VL, so everything downstream (generation,
policies, serving, training) runs unchanged on a real checkpoint loaded from a local path.
Crafter's 64 px image is resized to `image_size` (a multiple of patch_size * merge_size):
112 px gives 8x8 patches of 14 px, merged 2x2 into 16 visual tokens per image.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from crossagent.models.processor import Qwen2VLImageTextProcessor, save_processor
from crossagent.models.tokenizer import (CHAT_TEMPLATE, ENDOFTEXT, IM_END, IMAGE_PAD, VIDEO_PAD, VISION_END,
                                         VISION_START, TokenizerConfig, train_tokenizer)


@dataclass(frozen=True)
class TinyVLMConfig:
    hidden_size: int = 128
    intermediate_size: int = 512
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    vision_depth: int = 2
    vision_width: int = 64
    vision_heads: int = 4
    patch_size: int = 14
    merge_size: int = 2
    image_size: int = 112
    max_position_embeddings: int = 4096
    initializer_range: float = 0.02  # std of the random weights (Qwen2-VL's value)
    seed: int = 0
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)

    @property
    def visual_tokens_per_image(self) -> int:
        return (self.image_size // (self.patch_size * self.merge_size)) ** 2

    def __post_init__(self) -> None:
        factor = self.patch_size * self.merge_size
        if self.image_size % factor:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size * merge_size = {factor}")
        if self.hidden_size % (2 * self.num_heads):
            raise ValueError(f"hidden_size {self.hidden_size} must split into {self.num_heads} heads of even size "
                             f"(rotary embeddings rotate pairs)")


def mrope_section(head_dim: int) -> list[int]:
    """Qwen2-VL splits the rotary half-dimension over (time, height, width) as 1/4, 3/8, 3/8 ([16, 24, 24] at 128)."""
    half = head_dim // 2
    temporal = half // 4
    spatial = (half - temporal) // 2
    return [temporal, spatial, half - temporal - spatial]


def build_processor(tokenizer: PreTrainedTokenizerFast, config: TinyVLMConfig) -> Qwen2VLImageTextProcessor:
    # min = max pixels pins every square image to image_size x image_size, whatever its input size.
    pixels = config.image_size ** 2
    image_processor = Qwen2VLImageProcessorPil(
        size={"shortest_edge": pixels, "longest_edge": pixels},
        patch_size=config.patch_size, merge_size=config.merge_size, temporal_patch_size=2)
    return Qwen2VLImageTextProcessor(image_processor, tokenizer, chat_template=CHAT_TEMPLATE)


def build_model(tokenizer: PreTrainedTokenizerFast, config: TinyVLMConfig) -> Qwen2VLForConditionalGeneration:
    ids = tokenizer.convert_tokens_to_ids
    head_dim = config.hidden_size // config.num_heads
    model_config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": config.hidden_size,
            "intermediate_size": config.intermediate_size,
            "num_hidden_layers": config.num_layers,
            "num_attention_heads": config.num_heads,
            "num_key_value_heads": config.num_kv_heads,
            "max_position_embeddings": config.max_position_embeddings,
            "initializer_range": config.initializer_range,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope_section(head_dim)},
            "tie_word_embeddings": True,  # the embedding is a large share of a tiny model
            "bos_token_id": ids(ENDOFTEXT),
            "eos_token_id": ids(IM_END),
            "pad_token_id": ids(ENDOFTEXT),
        },
        vision_config={
            "depth": config.vision_depth,
            "embed_dim": config.vision_width,
            "hidden_size": config.hidden_size,  # the merger projects into the language model's width
            "num_heads": config.vision_heads,
            "patch_size": config.patch_size,
            "spatial_merge_size": config.merge_size,
            "temporal_patch_size": 2,
            "initializer_range": config.initializer_range,
        },
        image_token_id=ids(IMAGE_PAD),
        video_token_id=ids(VIDEO_PAD),
        vision_start_token_id=ids(VISION_START),
        vision_end_token_id=ids(VISION_END),
        tie_word_embeddings=True,
        initializer_range=config.initializer_range,
    )
    torch.manual_seed(config.seed)
    model = Qwen2VLForConditionalGeneration(model_config)
    # A reply ends at <|im_end|>; <|endoftext|> pads and also stops, as in Qwen2-VL-Instruct.
    model.generation_config.eos_token_id = [ids(IM_END), ids(ENDOFTEXT)]
    model.generation_config.pad_token_id = ids(ENDOFTEXT)
    model.generation_config.bos_token_id = ids(ENDOFTEXT)
    return model.eval()


def build_tiny_model(corpus: Iterable[str] | None = None, config: TinyVLMConfig = TinyVLMConfig(),
                     latent_codes: bool = False) -> tuple[Qwen2VLForConditionalGeneration, Qwen2VLImageTextProcessor]:
    """Train a tokenizer on `corpus` (default: the agent's prompts and level lines); build the model and processor.
    `latent_codes`: a model for the latent format, whose tokenizer also has the latent code tokens."""
    tokenizer = train_tokenizer(corpus, config.tokenizer, latent_codes)
    return build_model(tokenizer, config), build_processor(tokenizer, config)


def create_tiny_model(path: str | Path, corpus: Iterable[str] | None = None,
                      config: TinyVLMConfig = TinyVLMConfig(), latent_codes: bool = False) -> Path:
    """Build the tiny model and save it with its processor to `path`; `loading.load_model(path)` reads it back."""
    path = Path(path)
    model, processor = build_tiny_model(corpus, config, latent_codes)
    model.save_pretrained(path)
    save_processor(processor, path)
    return path
