"""The OpenAI chat-completions request `crossagent serve` accepts, as pydantic models.

Every constraint is declared here, so a malformed request is a 400 with the field's path
before it reaches the model. The cap on `max_tokens` is a server option, so the schema is
made per server (`request_schema`). A reply can be constrained as vLLM's API does it: the field
`structured_outputs` with a `grammar` (Lark or GBNF) or a `regex`, or the older `guided_grammar`
and `guided_regex` (vLLM before 0.12); other kinds (json, choice) are refused, never ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from crossagent.models.constrained_decoding import Grammar
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


class StructuredOutputs(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a json or choice constraint silently dropped would lie

    grammar: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def one_constraint(self) -> "StructuredOutputs":
        if (self.grammar is None) == (self.regex is None):
            raise ValueError("give exactly one of grammar and regex")
        return self


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
    structured_outputs: StructuredOutputs | None = None
    guided_grammar: str | None = None
    guided_regex: str | None = None

    @model_validator(mode="after")
    def one_constraint(self) -> "ChatCompletionRequest":
        given = [name for name in ("structured_outputs", "guided_grammar", "guided_regex")
                 if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one constraint, not {' and '.join(given)}")
        return self

    def grammar(self) -> Grammar | None:
        """What the reply must follow, or None."""
        if self.structured_outputs is not None:
            outputs = self.structured_outputs
            return Grammar(outputs.grammar, "grammar") if outputs.grammar is not None else Grammar(outputs.regex, "regex")
        if self.guided_grammar is not None:
            return Grammar(self.guided_grammar, "grammar")
        if self.guided_regex is not None:
            return Grammar(self.guided_regex, "regex")
        return None

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
