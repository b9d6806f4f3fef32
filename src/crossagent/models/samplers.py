"""Where replies come from: a sampler answers a list of chat requests with one call.

`LocalSampler` runs one batched `generate_batch` over a model in this process; `ServerSampler`
posts the requests, concurrently, to an OpenAI-compatible chat server (`crossagent serve`,
vLLM), so the server batches them. Every request carries its own seed, and its reply depends
on that seed alone, whichever requests share its batch. Neither ever returns a vision token
(<|image_pad|>, <|vision_start|>, ...): in the next prompt's history the processor would count
it as an image. A `constrained` sampler holds each reply to the grammar of its request's output
format (models.output_grammar): in this process by masking the logits, on a server by sending
the grammar as vLLM's `structured_outputs` field.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.processing_utils import ProcessorMixin

from crossagent.models.constrained_decoding import Grammar
from crossagent.models.generation import VISION_TOKENS, GenerationSettings, generate_batch
from crossagent.models.openai_messages import to_openai_messages
from crossagent.models.output_grammar import output_grammar
from crossagent.models.reply_request import ReplyRequest, Sample
from crossagent.models.tokenizer import IM_END


def request_grammar(request: ReplyRequest, constrained: bool) -> Grammar | None:
    """The grammar a constraining sampler holds the request's reply to; a request without an output
    format is free text."""
    return format_grammar(request.output_format, request.final_level, constrained)


def format_grammar(output_format: str | None, final_level: str | None, constrained: bool) -> Grammar | None:
    """The grammar of replies in `output_format` (ending at `final_level`) when constrained, else None."""
    if not constrained or output_format is None:
        return None
    return output_grammar(output_format, final_level)


class LocalSampler:
    """One batched `generate_batch` call, keeping the sampled token ids (the policy gradient needs the
    tokens that were sampled, not a re-tokenisation)."""

    def __init__(self, model: PreTrainedModel, processor: ProcessorMixin, settings: GenerationSettings,
                 constrained: bool = False):
        self.model = model
        self.processor = processor
        self.settings = settings
        self.constrained = constrained

    def sample(self, requests: list[ReplyRequest]) -> list[Sample]:
        completions = generate_batch(self.model, self.processor, [request.chat for request in requests], self.settings,
                                     [request.seed for request in requests],
                                     grammars=[request_grammar(request, self.constrained) for request in requests])
        return [Sample(completion.reply, completion.token_ids) for completion in completions]


class ChatServerError(RuntimeError):
    """The server could not be reached, timed out, or answered with an error."""


class ServerSampler:
    """Replies from an OpenAI-compatible server over plain HTTP (httpx; the `openai` package is not
    needed). Images go as base64 PNG data URLs (models.openai_messages).

    The server returns text only: with a `tokenizer`, token ids are the reply re-tokenised
    (+ <|im_end|> unless it stopped at max_tokens); the GRPO trainer's recompute pass supplies the
    old log-probs. `prompt_tokens` and `completion_tokens` add up the answers' usage.
    """

    def __init__(self, base_url: str, model: str, tokenizer: PreTrainedTokenizerBase | None = None,
                 temperature: float = 0.0, top_p: float = 1.0, max_tokens: int = 64, timeout: float = 120.0,
                 api_key: str | None = None, client: httpx.Client | None = None, constrained: bool = False):
        """`base_url` ends where OpenAI's does, at `/v1` (e.g. http://127.0.0.1:8000/v1). A vLLM server
        constrains with its `guidance` backend (the grammar is llguidance's Lark)."""
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.tokenizer = tokenizer
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.Client(timeout=timeout)
        self.constrained = constrained
        self.end_id = tokenizer.convert_tokens_to_ids(IM_END) if tokenizer is not None else None
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def sample(self, requests: list[ReplyRequest]) -> list[Sample]:
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            answers = list(pool.map(self._post, requests))
        for _, usage in answers:  # added up here, not in the threads
            self.prompt_tokens += int(usage.get("prompt_tokens", 0))
            self.completion_tokens += int(usage.get("completion_tokens", 0))
        return [sample for sample, _ in answers]

    def _post(self, request: ReplyRequest) -> tuple[Sample, dict]:
        body = {"model": self.model, "messages": to_openai_messages(request.messages, request.images),
                "temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                "seed": request.seed}
        if (grammar := request_grammar(request, self.constrained)) is not None:
            body["structured_outputs"] = {grammar.syntax: grammar.text}
        try:
            response = self.client.post(self.url, json=body, headers=self.headers)
        except httpx.TimeoutException as error:
            raise ChatServerError(f"{self.url}: no answer within {self.client.timeout.read} s") from error
        except httpx.TransportError as error:
            raise ChatServerError(f"{self.url}: cannot reach the server ({error}); is it running?") from error
        if response.status_code != 200:
            raise ChatServerError(f"{self.url}: HTTP {response.status_code}: {error_message(response)}")
        try:
            data = response.json()
        except ValueError as error:
            raise ChatServerError(f"{self.url}: the answer is not JSON: {response.text[:200]}") from error
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as error:
            raise ChatServerError(f"{self.url}: the answer has no choices[0].message.content: "
                                  f"{str(data)[:200]}") from error
        for token in VISION_TOKENS:
            text = text.replace(token, "")
        text = text.strip()
        return Sample(text, self._token_ids(text, choice.get("finish_reason") != "length")), data.get("usage") or {}

    def _token_ids(self, text: str, stopped: bool) -> tuple[int, ...]:
        if self.tokenizer is None:
            return ()
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return tuple(ids + [self.end_id] if stopped else ids)

    def close(self) -> None:
        self.client.close()


def error_message(response: httpx.Response) -> str:
    """OpenAI-style servers put the reason in error.message (vLLM too); fall back to the body."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
