"""GRPO's turns as the model reads them: each prompt encoded once per iteration, micro-batches that run
their common prefix once.

Every pass over an iteration's turns (old log-probs, reference log-probs, each epoch's forward and
backward) needs the same model inputs; `encode_turns` renders, tokenises and processes each prompt,
takes its M-RoPE positions and its grammar masks once, for the turns this process scores.

The prompts of a micro-batch start alike (the system prompt is ~85% of a "full"-style prompt), so
`reply_logits` runs their common prefix once, as a batch of one, into a KV cache repeated for every
row, then the rest of each row after it: [prefix | left padding | rest of the prompt | reply | right
padding]. In a causal model the prefix's keys and values are the same whatever follows, so the logits
equal the full batch's (tests/train/test_turn_batches.py); gradients flow back through the cache into
the prefix pass.

Memory: an encoded turn keeps its images as the processor's float patches (about 300 KB per 112 px
frame), for one iteration's turns of this process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache

from crossagent.agents.model_policy import SampledTurn
from crossagent.models.constrained_decoding import grammar_compiler
from crossagent.models.samplers import format_grammar

ENCODE_CHUNK = 32  # prompts per processor call: one call per prompt costs ~2x in tokeniser and image overhead
PAD_ID = 0  # padding is masked out of attention and of the loss: any id will do


@dataclass(frozen=True)
class EncodedTurn:
    prompt_ids: torch.Tensor  # [prompt] the chat prompt's token ids, image placeholders included
    text_head: int  # prompt tokens before the first image placeholder: what rows may share as a prefix
    positions: torch.Tensor  # [3, prompt + reply] M-RoPE positions (temporal, height, width)
    pixel_values: torch.Tensor | None  # the processor's patches of the prompt's images, None without images
    image_grid_thw: torch.Tensor | None  # [images, 3]
    reply_ids: torch.Tensor  # [reply] the sampled token ids
    allowed: np.ndarray | None  # [reply, vocab / 8] packed masks of what the grammar allowed (train.grpo_loss)


def allowed_tokens(turns: Sequence[SampledTurn], processor, vocab_size: int, constrained: bool
                   ) -> list[np.ndarray | None]:
    """Per turn, the packed masks of the tokens its grammar allowed at each reply position (constrained
    rollouts), else None: the policy a constrained reply was sampled from is the model's distribution
    renormalised over those tokens, and the ratio and KL must be taken on that policy."""
    compiler = grammar_compiler(processor.tokenizer, vocab_size) if constrained else None
    masks = []
    for turn in turns:
        grammar = format_grammar(turn.output_format, turn.final_level, constrained)
        masks.append(None if grammar is None else compiler.allowed_tokens(grammar, turn.token_ids))
    return masks


def encode_turns(turns: Sequence[SampledTurn], indices: Sequence[int], policy, processor, constrained: bool
                 ) -> dict[int, EncodedTurn]:
    """turns[i] for i in indices, encoded. `policy` (not DDP-wrapped) gives the vocabulary and its
    get_rope_index, the positions Qwen2-VL's forward would compute itself."""
    allowed = allowed_tokens([turns[i] for i in indices], processor, policy.config.get_text_config().vocab_size,
                             constrained)
    encoded = {}
    for start in range(0, len(indices), ENCODE_CHUNK):
        chunk = indices[start:start + ENCODE_CHUNK]
        texts = [processor.apply_chat_template(turns[i].messages, add_generation_prompt=True, tokenize=False)
                 for i in chunk]
        images = [image for i in chunk for image in turns[i].images]
        inputs = processor(text=texts, images=images or None, padding=True, padding_side="left",
                           return_tensors="pt")
        grids = inputs.get("image_grid_thw")
        positions, _ = policy.model.get_rope_index(inputs["input_ids"], inputs["mm_token_type_ids"], grids,
                                                    attention_mask=inputs["attention_mask"])
        patches = grids.prod(-1).tolist() if grids is not None else []
        first_patch = first_image = 0
        for row, index in enumerate(chunk):
            real = inputs["attention_mask"][row].bool()
            types = inputs["mm_token_type_ids"][row][real]
            count = len(turns[index].images)
            used = sum(patches[first_image:first_image + count])
            reply = torch.tensor(turns[index].token_ids, dtype=torch.long)
            prompt_positions = positions[:, row, real]
            # The reply is text after the prompt's last (text) token: its positions go on by one per token.
            reply_positions = prompt_positions[:, -1:] + 1 + torch.arange(len(reply))
            encoded[index] = EncodedTurn(
                prompt_ids=inputs["input_ids"][row][real],
                text_head=int(types.ne(0).long().argmax()) if types.ne(0).any() else len(types),
                positions=torch.cat([prompt_positions, reply_positions], dim=1),
                pixel_values=inputs["pixel_values"][first_patch:first_patch + used] if count else None,
                image_grid_thw=grids[first_image:first_image + count] if count else None,
                reply_ids=reply, allowed=allowed[start + row])
            first_patch, first_image = first_patch + used, first_image + count
    return encoded


def shared_prefix(batch: Sequence[EncodedTurn]) -> int:
    """How many leading prompt tokens every row has in common (text only, and at least one token of
    every prompt left over: the last prompt token predicts the reply's first)."""
    first = batch[0].prompt_ids
    length = min(min(turn.text_head, len(turn.prompt_ids) - 1) for turn in batch)
    for turn in batch[1:]:
        differs = (turn.prompt_ids[:length] != first[:length]).nonzero()
        length = int(differs[0]) if len(differs) else length
    return length


def reply_logits(model, batch: Sequence[EncodedTurn]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits [turns, width, vocab] of the position before each reply token, reply ids [turns, width], mask
    [turns, width] 1 on reply tokens), width the longest reply."""
    prefix = shared_prefix(batch)
    rest = max(len(turn.prompt_ids) for turn in batch) - prefix
    width = max(len(turn.reply_ids) for turn in batch)
    rows, total = len(batch), prefix + rest + width
    input_ids = torch.full((rows, rest + width), PAD_ID, dtype=torch.long)
    attention = torch.zeros((rows, total), dtype=torch.long)
    attention[:, :prefix] = 1
    positions = torch.zeros((3, rows, total), dtype=torch.long)
    reply_ids = torch.full((rows, width), PAD_ID, dtype=torch.long)
    mask = torch.zeros((rows, width), dtype=torch.long)
    for row, turn in enumerate(batch):
        own, reply = len(turn.prompt_ids) - prefix, len(turn.reply_ids)
        input_ids[row, rest - own:rest + reply] = torch.cat([turn.prompt_ids[prefix:], turn.reply_ids])
        attention[row, prefix + rest - own:prefix + rest + reply] = 1
        positions[:, row, :prefix] = turn.positions[:, :prefix]
        positions[:, row, prefix + rest - own:prefix + rest + reply] = turn.positions[:, prefix:]
        reply_ids[row, :reply] = turn.reply_ids
        mask[row, :reply] = 1
    device = next(model.parameters()).device
    positions = positions.to(device)
    cache = None
    if prefix:
        cache = DynamicCache()
        model(input_ids=batch[0].prompt_ids[None, :prefix].to(device), position_ids=positions[:, :1, :prefix],
              cache=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(rows)
    with_images = [turn for turn in batch if turn.pixel_values is not None]
    images = ({"pixel_values": torch.cat([turn.pixel_values for turn in with_images]).to(device),
               "image_grid_thw": torch.cat([turn.image_grid_thw for turn in with_images]).to(device)}
              if with_images else {})
    # Position p predicts token p + 1: the reply's logits are the width positions before the last one.
    logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                   position_ids=positions[:, :, prefix:], cache=cache, use_cache=cache is not None,
                   logits_to_keep=width + 1, **images).logits[:, :-1]
    return logits, reply_ids.to(device), mask.to(device)
