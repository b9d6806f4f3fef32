"""A small byte-level BPE tokenizer trained locally, shaped like Qwen2-VL's.

The tiny model needs a vocabulary that fits its size and no hub download. The tokenizer
splits text the way Qwen2's does (same pre-tokenizer regex: digits one by one, so
coordinates are three tokens), keeps Qwen2-VL's chat and vision tokens as single ids,
and carries a Qwen2-VL chat template. `{% generation %}` marks assistant text, so
`apply_chat_template(..., return_assistant_tokens_mask=True)` masks everything else
for assistant-only loss.

The latent level's code tokens (`<|latent_0|>` ...) are added only to a tokenizer made for the latent
format (`latent_codes=True`): every other tokenizer, and so the tiny model's vocabulary and initial
weights, stays as it was.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from crossagent.actions import grounding, latent, motion, raw, skill
from crossagent.envs.crafter_env import ACHIEVEMENTS, ACTION_NAMES
from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.models.prompts import OUTPUT_FORMATS, system_prompt, task_line
from crossagent.tasks.suite import load_suite

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"
# Control tokens: never part of a reply's text, dropped by skip_special_tokens.
CONTROL_TOKENS = (ENDOFTEXT, IM_START, IM_END, VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD)
# Reply tokens: grounding replies contain them, so decoding must keep them (special=False).
REPLY_TOKENS = (*grounding.OBJECT_REF, *grounding.POINT_REF)
SPECIAL_TOKENS = (*CONTROL_TOKENS, *REPLY_TOKENS)
LATENT_TOKENS = latent.TOKENS  # reply tokens too, of a tokenizer made for the latent format only

QWEN2_PRETOKENIZE_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                           r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")

MATERIALS = tuple(name for name in VOCABULARY.text_view.material_symbols if name is not None)  # grounding labels name these

# Qwen2-VL's template (same rendering), with {% generation %} around what the assistant writes: its reply
# and <|im_end|>. Newlines are explicit because transformers renders templates with trim_blocks.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{%- set parts = [{'type': 'text', 'text': message['content']}] -%}"
    "{%- else -%}{%- set parts = message['content'] -%}{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- generation -%}"
    "{%- for part in parts if part['type'] == 'text' -%}{{- part['text'] -}}{%- endfor -%}"
    "{{- '<|im_end|>' -}}"
    "{%- endgeneration -%}"
    "{%- else -%}"
    "{%- for part in parts -%}"
    "{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif part['type'] == 'video' or 'video' in part -%}{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in part -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}"
    "{{- '<|im_end|>' -}}"
    "{%- endif -%}"
    "{{- '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


@dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int = 2048  # an upper bound: merges stop when no pair occurs min_frequency times (~1k on the default corpus)
    min_frequency: int = 2


def default_corpus(seed: int = 0, grounding_points: int = 2000) -> Iterator[str]:
    """Texts the agent reads and writes: system prompts, task lines (both prompt styles), text views, canonical level lines.

    Grounding points are a seeded sample of the 0-999 grid (the full grid is a million lines).
    """
    yield from (system_prompt(output_format, with_text) for output_format in OUTPUT_FORMATS for with_text in (False, True))
    for index, task in enumerate(load_suite().tasks):
        yield f"Task: {task.instruction}"
        yield from (f"Task: {paraphrase}" for paraphrase in task.paraphrases)
        # The compact prompt style's first line: every format's tag occurs often enough to merge into few tokens.
        yield task_line(OUTPUT_FORMATS[index % len(OUTPUT_FORMATS)], task.instruction, "compact")
    yield from _text_views(seed)
    yield from (raw.to_text(raw.RawAction(name)) for name in ACTION_NAMES)
    yield from (motion.to_text(motion.Motion(name, count)) for name in ACTION_NAMES
                for count in range(1, motion.MAX_REPEAT + 1))
    yield from (skill.to_text(skill.Skill(sentence)) for sentence in VOCABULARY.skill.sentences)
    rng = random.Random(seed)
    words = VOCABULARY.grounding
    labels = [*MATERIALS, *VOCABULARY.objects]
    for _ in range(grounding_points):
        verb = rng.choice([v for v in words.verbs if v not in words.verbs_without_point])
        point = (rng.randrange(1000), rng.randrange(1000))
        label = rng.choice([None, *labels])
        yield grounding.to_text(grounding.Grounding(verb, point, label))
    yield from (grounding.to_text(grounding.Grounding(verb)) for verb in words.verbs_without_point)


def _text_views(seed: int, count: int = 50) -> Iterator[str]:
    """Random text renderings in the shape of envs.text_view's, so the vocabulary covers them."""
    rng = random.Random(seed)
    symbols = [symbol for symbol in VOCABULARY.text_view.material_symbols.values() if symbol.strip()]
    for _ in range(count):
        rows = ["".join(rng.choice(symbols) for _ in range(9)) for _ in range(7)]
        vitals = ", ".join(f"{name} {rng.randint(0, 9)}" for name in VOCABULARY.text_view.vitals)
        yield "\n".join(["view:", *rows, f"facing: {rng.choice(list(VOCABULARY.directions))}",
                         f"vitals: {vitals}", "inventory: wood 2, sapling 1",
                         f"achievements: {', '.join(rng.sample(ACHIEVEMENTS, rng.randint(1, 4)))}", f"time: {rng.choice(['day', 'night'])}"])


def train_tokenizer(texts: Iterable[str] | None = None, config: TokenizerConfig = TokenizerConfig(),
                    latent_codes: bool = False) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts` (default: `default_corpus()`) and wrap it for transformers;
    `latent_codes` appends the latent code tokens (after the trained vocabulary, so no other id moves)."""
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        # Every byte is in the vocabulary, so any text encodes (byte-level, no unknown token).
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    bpe.train_from_iterator(texts if texts is not None else default_corpus(), trainer=trainer)
    # Reply tokens stay whole inside text (normalized=False) yet survive skip_special_tokens.
    bpe.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in CONTROL_TOKENS])
    bpe.add_tokens([AddedToken(token, special=False, normalized=False) for token in REPLY_TOKENS])
    if latent_codes:
        bpe.add_tokens([AddedToken(token, special=False, normalized=False) for token in LATENT_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=IM_END,  # as Qwen2-VL-Instruct: a reply ends with <|im_end|>
        pad_token=ENDOFTEXT,
        unk_token=None,
        bos_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=4096,
    )
    return tokenizer
