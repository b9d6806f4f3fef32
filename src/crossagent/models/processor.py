"""The Qwen2-VL processor for images and text, usable without torchvision.

transformers builds `Qwen2VLProcessor` with a video processor, and its video processors
exist only when torchvision is installed; the CPU build of torch here has no matching
torchvision wheel. The agent never sends video, so this subclass drops that part and is
otherwise the same processor: same image processor, tokenizer, chat template, and the
same expansion of each `<|image_pad|>` into the image's visual tokens.

Checkpoints are saved in the hub's layout (tokenizer files, preprocessor_config.json,
chat_template.jinja), so `AutoProcessor` reads them where torchvision is installed.
"""

from __future__ import annotations

from pathlib import Path

from transformers import PreTrainedTokenizerBase, Qwen2VLProcessor
from transformers.image_processing_utils import BaseImageProcessor
from transformers.processing_utils import ProcessorMixin

from crossagent.models.tokenizer import IMAGE_PAD


class Qwen2VLImageTextProcessor(Qwen2VLProcessor):
    def __init__(self, image_processor: BaseImageProcessor | None = None,
                 tokenizer: PreTrainedTokenizerBase | None = None, chat_template: str | None = None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or IMAGE_PAD
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token = None  # no video: the processor never looks for video placeholders
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def save_processor(processor: ProcessorMixin, path: str | Path) -> None:
    """Save in the hub's layout, naming no processor class (a loader picks it from the model type)."""
    processor.tokenizer.chat_template = processor.chat_template  # written as chat_template.jinja
    processor.tokenizer.save_pretrained(path)
    processor.image_processor.save_pretrained(path)
