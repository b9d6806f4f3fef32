"""A validated chat request -> a generation request the model can take, or a ClientError.

Each request is checked and tokenized alone, before it joins a batch: a request the
processor would choke on (a vision placeholder in its text, too many tokens, an unreadable
or huge image) fails alone with a 400 instead of failing every request batched with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from transformers.processing_utils import ProcessorMixin

from crossagent.models.chat_api import ChatCompletionRequest, ImagePart
from crossagent.models.constrained_decoding import Grammar, grammar_compiler
from crossagent.models.generation import GenerationSettings, Request
from crossagent.models.openai_messages import data_url_to_image
from crossagent.models.tokenizer import CONTROL_TOKENS

DEFAULT_MAX_TOKENS = 256  # a request's max_tokens when it sends none (at most the cap)


class ClientError(ValueError):
    """A request the server refuses; answered with HTTP 400 and this message."""


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask for; `serve` options set them."""

    max_body_bytes: int = 4 * 2**20  # the JSON body, images included
    max_prompt_tokens: int | None = None  # None: the model's context length
    max_tokens: int = 1024  # the cap on a request's max_tokens
    max_image_pixels: int = 2048 * 2048  # all of a request's images together (decoded RGB: 12 MB)


@dataclass(frozen=True)
class PreparedRequest:
    request: Request
    settings: GenerationSettings
    prompt_tokens: int  # visual tokens included
    grammar: Grammar | None = None  # what the reply must follow (structured outputs)


class RequestPreparer:
    def __init__(self, processor: ProcessorMixin, limits: ServeLimits, max_prompt_tokens: int, vocab_size: int):
        self.processor = processor
        self.limits = limits
        self.max_prompt_tokens = max_prompt_tokens
        self.vocab_size = vocab_size
        tokenizer = processor.tokenizer
        # Chat markers and vision placeholders come from the template; in text they would forge turns or images.
        named = (tokenizer.eos_token, tokenizer.bos_token, tokenizer.pad_token, processor.image_token)
        self.control_tokens = sorted({*CONTROL_TOKENS, *(token for token in named if token)})
        # A token covers at most this many characters (byte-level vocabulary entries: one character a byte).
        self.longest_token = max(len(token) for token in tokenizer.get_vocab())

    def prepare(self, body: ChatCompletionRequest) -> PreparedRequest:
        messages, images = [], []
        characters = pixels = 0
        for index, message in enumerate(body.messages):
            parts = []
            for number, part in enumerate(message.content):
                where = f"messages[{index}].content[{number}]"
                if isinstance(part, ImagePart):
                    try:
                        image = data_url_to_image(part.image_url.url, self.limits.max_image_pixels - pixels)
                    except ValueError as error:
                        raise ClientError(f"{where}: {error} (limit: {self.limits.max_image_pixels} pixels "
                                          f"for all of a request's images)") from error
                    pixels += image.shape[0] * image.shape[1]
                    images.append(image)
                    parts.append({"type": "image"})
                else:
                    self._check_text(part.text, where)
                    characters += len(part.text)
                    parts.append({"type": "text", "text": part.text})
            messages.append({"role": message.role, "content": parts})
        # Tokenizing megabytes takes seconds: text too long for any tokenization is refused before.
        if characters > self.max_prompt_tokens * self.longest_token:
            raise ClientError(f"the prompt's {characters} characters cannot fit the limit of "
                              f"{self.max_prompt_tokens} prompt tokens")
        prompt_tokens = self._count_tokens(messages, images)
        if prompt_tokens > self.max_prompt_tokens:
            raise ClientError(f"the prompt has {prompt_tokens} tokens, more than the limit of "
                              f"{self.max_prompt_tokens}")
        settings = body.settings(default_max_tokens=min(DEFAULT_MAX_TOKENS, self.limits.max_tokens))
        grammar = body.grammar()
        if grammar is not None:
            self._check_grammar(grammar)
        return PreparedRequest((messages, images), settings, prompt_tokens, grammar)

    def _check_grammar(self, grammar: Grammar) -> None:
        """Compiled here, alone: a bad grammar fails its own request, not the batch it would join."""
        try:
            grammar_compiler(self.processor.tokenizer, self.vocab_size).matcher(grammar)
        except ValueError as error:
            raise ClientError(f"structured_outputs: {error}") from error

    def _check_text(self, text: str, where: str) -> None:
        for token in self.control_tokens:
            if token in text:
                raise ClientError(f"{where}: the text contains the control token {token}; chat markers "
                                  f"and image placeholders come from the chat template, not from text")

    def _count_tokens(self, messages: list[dict], images: list[np.ndarray]) -> int:
        """The prompt's tokens as generation will see them, each image's visual tokens included."""
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        try:
            inputs = self.processor(text=[text], images=images or None)
        except ValueError as error:  # e.g. an image too thin for the image processor
            raise ClientError(f"the processor refuses the request: {error}") from error
        return len(inputs["input_ids"][0])
