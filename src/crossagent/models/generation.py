"""Batched generation: many chat requests, one `model.generate` call.

Prompts are padded on the left so every row's new tokens start at the same column; each
reply is cut at its first stop token (the model's end-of-sequence ids or padding) and
decoded with special tokens kept, because grounding replies contain
<|object_ref_start|> and <|point_start|>, which real Qwen checkpoints mark special. A row with a
grammar writes only what it allows (models.constrained_decoding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor, PreTrainedModel, StoppingCriteriaList, TopKLogitsWarper, TopPLogitsWarper
from transformers.processing_utils import ProcessorMixin

from crossagent.models.constrained_decoding import Grammar, grammar_constraint
from crossagent.models.reply_request import Chat
from crossagent.models.tokenizer import IMAGE_PAD, VIDEO_PAD, VISION_END, VISION_START

# A reply must never contain these: in the history the processor would count them as images.
VISION_TOKENS = (VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD)
Request = Chat  # one chat request: (messages, images)


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 64
    do_sample: bool = False  # greedy unless sampling is asked for
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k filter
    seed: int | None = None  # row r of a call samples from seed + r unless the caller gives each row its seed

    def generate_kwargs(self) -> dict:
        # Greedy search over the logits RowSampling perturbed: the sampling itself happens there. The
        # checkpoint's own sampling knobs (e.g. top_k=1) are unset so they neither apply nor warn.
        return {"max_new_tokens": self.max_new_tokens, "do_sample": False,
                "temperature": None, "top_p": None, "top_k": None}


class RowSampling(LogitsProcessor):
    """Samples every row from its own torch.Generator (the Gumbel-max trick: argmax of logits + Gumbel
    noise is a draw from their softmax), so a reply depends on its seed alone, never on which other
    requests share its batch; `generate`'s own sampling draws the whole batch from one global RNG.
    Temperature, top-k and top-p apply first, as in `generate`."""

    def __init__(self, settings: GenerationSettings, seeds: Sequence[int], device: torch.device):
        self.temperature = settings.temperature
        self.filters = [*([TopKLogitsWarper(settings.top_k)] if settings.top_k > 0 else []),
                        *([TopPLogitsWarper(settings.top_p)] if settings.top_p < 1.0 else [])]
        self.generators = [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores / self.temperature
        for keep_likely in self.filters:
            scores = keep_likely(input_ids, scores)
        uniform = torch.stack([torch.rand(scores.shape[-1], generator=generator, device=scores.device)
                               for generator in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp(min=torch.finfo(uniform.dtype).tiny)))
        return scores + gumbel.to(scores.dtype)


@dataclass(frozen=True)
class Completion:
    reply: str
    prompt_tokens: int  # visual tokens included
    completion_tokens: int  # the stop token included when one was generated
    stopped: bool  # False: cut at max_new_tokens
    token_ids: tuple[int, ...] = ()  # the sampled reply tokens, the stop token included


def stop_token_ids(model: PreTrainedModel, processor: ProcessorMixin) -> set[int]:
    config = model.generation_config
    eos = config.eos_token_id if config.eos_token_id is not None else processor.tokenizer.eos_token_id
    ids = set(eos) if isinstance(eos, (list, tuple)) else {eos}
    pad = config.pad_token_id if config.pad_token_id is not None else processor.tokenizer.pad_token_id
    return {i for i in (*ids, pad) if i is not None}


def vision_token_ids(processor: ProcessorMixin) -> list[int]:
    tokenizer = processor.tokenizer
    ids = [tokenizer.convert_tokens_to_ids(token) for token in VISION_TOKENS]
    return [i for i in ids if i is not None and i != tokenizer.unk_token_id]


def generate_batch(model: PreTrainedModel, processor: ProcessorMixin, requests: list[Request],
                   settings: GenerationSettings = GenerationSettings(),
                   seeds: Sequence[int] | None = None,
                   stopping_criteria: StoppingCriteriaList | None = None,
                   grammars: Sequence[Grammar | None] | None = None) -> list[Completion]:
    """One completion per request, all from one `model.generate` call. With sampling, row r draws from
    `seeds[r]` (default: settings.seed + r, or fresh entropy without a seed). Row r writes only what
    `grammars[r]` allows (None: free text). `stopping_criteria` can end the call early."""
    if not requests:
        return []
    if seeds is None:
        base = settings.seed if settings.seed is not None else int(torch.seed() % 2**31)
        seeds = [base + row for row in range(len(requests))]
    if len(seeds) != len(requests):
        raise ValueError(f"{len(seeds)} seeds for {len(requests)} requests")
    if grammars is not None and len(grammars) != len(requests):
        raise ValueError(f"{len(grammars)} grammars for {len(requests)} requests")
    texts = [processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
             for messages, _ in requests]
    images = [image for _, request_images in requests for image in request_images]
    inputs = processor(text=texts, images=images or None, padding=True, padding_side="left",
                       return_tensors="pt").to(model.device)
    # The constraint masks first, so sampling (Gumbel noise) picks among allowed tokens only.
    processors = []
    if grammars is not None and any(grammar is not None for grammar in grammars):
        vocab_size = model.config.get_text_config().vocab_size
        processors.append(grammar_constraint(processor.tokenizer, vocab_size, grammars))
    if settings.do_sample:
        processors.append(RowSampling(settings, seeds, model.device))
    with torch.inference_mode():
        output = model.generate(**inputs, **settings.generate_kwargs(), logits_processor=processors,
                                suppress_tokens=vision_token_ids(processor), stopping_criteria=stopping_criteria)
    stops = stop_token_ids(model, processor)
    prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
    completions = []
    for row, prompt in zip(output[:, inputs["input_ids"].shape[1]:].tolist(), prompt_tokens):
        end = next((i for i, token in enumerate(row) if token in stops), None)
        reply = processor.tokenizer.decode(row[:end], skip_special_tokens=False).strip()
        ids = tuple(row if end is None else row[:end + 1])
        completions.append(Completion(reply, prompt, len(ids), end is not None, ids))
    return completions

