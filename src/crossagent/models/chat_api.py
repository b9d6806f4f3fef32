"""The OpenAI chat-completions request `crossagent serve` accepts, as pydantic models.

Every constraint is declared here, so a malformed request is a 400 with the field's path
before it reaches the model. The cap on `max_tokens` is a server option, so the schema is
made per server (`request_schema`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, create_model

from crossagent.models.generation import GenerationSettings

INT64 = 2**63  # seeds are 64-bit signed integers, as torch and vLLM take them


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ImageUrl(BaseModel):
    # Inline images only: the server fetches nothing.
    url: str = Field(pattern=r"^data:image/[\w.+-]+;base64,",
                     description="a base64 data URL, e.g. data:image/png;base64,...")


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageUrl


Part = Annotated[TextPart | ImagePart, Field(discriminator="type")]


def text_as_parts(content: object) -> object:
    """OpenAI's string content is one text part (one type to validate, one error per problem)."""
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: Annotated[list[Part], BeforeValidator(text_as_parts)]


class ChatCompletionRequest(BaseModel):
    messages: list[Message] = Field(min_length=1)
    model: str | None = None
    temperature: float = Field(1.0, ge=0, le=2, allow_inf_nan=False)  # OpenAI's default and range; 0 is greedy
    top_p: float = Field(1.0, gt=0, le=1, allow_inf_nan=False)
    top_k: int = Field(0, ge=-1)  # vLLM's extension: 0 or -1, no top-k filter
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)  # OpenAI's newer name for max_tokens
    seed: int | None = Field(None, ge=-INT64, lt=INT64)
    n: Literal[1] = 1
    stream: Literal[False] = False

    def settings(self, default_max_tokens: int) -> GenerationSettings:
        max_tokens = self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens
        return GenerationSettings(
            max_new_tokens=default_max_tokens if max_tokens is None else max_tokens,
            do_sample=self.temperature > 0,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=max(self.top_k, 0),
            seed=self.seed,
        )


def request_schema(max_tokens_limit: int) -> type[ChatCompletionRequest]:
    """ChatCompletionRequest with `max_tokens` and `max_completion_tokens` at most `max_tokens_limit`."""
    capped = (int | None, Field(None, ge=1, le=max_tokens_limit))
    return create_model("ChatCompletionRequest", __base__=ChatCompletionRequest,
                        max_tokens=capped, max_completion_tokens=capped)
