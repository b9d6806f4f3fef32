"""Cold-start SFT: supervised fine-tuning on chat examples, loss on the final reply only.

TRL's SFTTrainer runs the loop (optimizer, schedule, checkpoints, resume, accelerate for
multi-GPU). We hand it our own collator because its vision-dataset preparation expects the
hub's chat templates. The collator renders each example with the processor's chat template,
batches images and text with the processor (padded on the right), and masks every label except
the tokens of the example's final reply (after the last `<|im_start|>assistant\n`, up to and
including its `<|im_end|>`).

Why only the final reply: the history's replies are inputs at evaluation time (the model's own
earlier replies), and as targets they would be predicted from a truncated context: the text view
of past turns is left out of the prompt, so with `observe=text` a history reply would be learned
from the task line alone. Each of them is the final reply of its own step's example anyway.

Where the compute goes on a CPU (benchmarks/results/sft_speed.md): `reply_loss` runs the output
layer only at the labelled positions (TRL's fused head does that only on CUDA/XPU and scores every
position elsewhere) and drops the padding mask, which right padding makes unnecessary: a causal
model's real tokens never attend to the pads after them, so attention runs as a plain causal
product. Both leave the loss and gradients unchanged (tests/train/test_sft.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from datasets import load_from_disk
from PIL import Image
from transformers import PrinterCallback, TrainerState
from transformers.trainer import TRAINER_STATE_NAME
from trl import SFTConfig, SFTTrainer

from crossagent.folder_lock import writes_folder
from crossagent.models.loading import load_model
from crossagent.train.curves import LossCurveCallback, LossProgressCallback

IGNORE_INDEX = -100
ASSISTANT_PREFIX = "<|im_start|>assistant\n"
TURN_END = "<|im_end|>"


def bf16_is_fast() -> bool:
    """Whether bf16 autocast speeds SFT up on this machine: a GPU that supports it, or a CPU with oneDNN's bf16
    kernels (AVX-512). Elsewhere bf16 is emulated: on an AVX2-only CPU a 256 x 256 bf16 matmul took 34x the float32
    one, and SFT ran about 10x slower (benchmarks/results/sft_speed.md)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@dataclass
class SFTSettings:
    """Every hyper-parameter of a cold-start SFT run, named."""

    model: str  # a local checkpoint directory (tiny or real)
    dataset: str  # a dataset saved by `crossagent data label`
    output_dir: str
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 8
    gradient_accumulation: int = 1
    learning_rate: float = 1e-3
    warmup_steps: int = 10
    weight_decay: float = 0.0
    max_length: int = 2048
    save_steps: int = 200
    logging_steps: int = 10
    seed: int = 0
    bf16: bool = False  # bf16 autocast (CPU or GPU); the weights and optimizer stay float32
    attention: str = "sdpa"  # attention kernel while training: sdpa, or eager (faster with bf16 on a CPU: sft_speed.md)
    resume: bool = True  # continue from the newest checkpoint in output_dir if there is one
    progress: bool = True


@dataclass(frozen=True)
class SFTResult:
    output_dir: str
    steps: int
    final_loss: float | None
    train_seconds: float  # of this session (a resumed run: since it resumed)
    tokens: int  # non-padding tokens seen by the model, all processes, resumed sessions included
    tokens_per_second: float  # of this session


class FinalReplyCollator:
    """Chat examples -> model inputs, right-padded, with labels on each example's final reply only."""

    def __init__(self, processor, max_length: int):
        self.processor = processor
        self.max_length = max_length
        tokenizer = processor.tokenizer
        self.prefix_ids = tokenizer.encode(ASSISTANT_PREFIX, add_special_tokens=False)
        self.end_id = tokenizer.convert_tokens_to_ids(TURN_END)

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        texts, images = [], []
        for example in examples:
            messages = example["messages"]
            messages = json.loads(messages) if isinstance(messages, str) else messages
            texts.append(self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=False))
            images.extend(_as_pil(image) for image in example.get("images") or [])
        batch = self.processor(text=texts, images=images or None, padding=True, padding_side="right",
                               return_tensors="pt", truncation=False)
        if batch["input_ids"].shape[1] > self.max_length:
            raise ValueError(f"an example is {batch['input_ids'].shape[1]} tokens, over max_length {self.max_length}; "
                             "shorten the history or raise max_length (truncating would cut images apart)")
        batch["labels"] = self.final_reply_labels(batch["input_ids"], batch["attention_mask"])
        return batch

    def final_reply_labels(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        prefix = self.prefix_ids
        for row, ids in enumerate(input_ids.tolist()):
            starts = [p + len(prefix) for p in range(len(ids) - len(prefix) + 1) if ids[p:p + len(prefix)] == prefix]
            if not starts:
                raise ValueError("an example has no assistant reply to learn")
            start = starts[-1]
            end = ids.index(self.end_id, start) if self.end_id in ids[start:] else len(ids) - 1
            # The reply and its closing <|im_end|>: the model must learn to stop.
            labels[row, start:end + 1] = input_ids[row, start:end + 1]
        return labels.masked_fill(attention_mask == 0, IGNORE_INDEX)


def reply_loss(model, inputs: dict[str, torch.Tensor], num_items_in_batch=None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, logits, targets) of the labelled tokens: the mean cross-entropy of the next-token predictions
    at labelled positions (or their sum over `num_items_in_batch`, the Trainer's count across accumulated
    micro-batches). Equals `model(**inputs).loss` for right-padded inputs, computing the output layer only
    where a label is and attention without the padding mask."""
    labels = inputs["labels"]
    kept = {key: value for key, value in inputs.items() if key not in ("labels", "attention_mask")}
    hidden = model.model(**kept, use_cache=False).last_hidden_state[:, :-1]
    targets = labels[:, 1:]
    labelled = targets != IGNORE_INDEX
    logits = model.get_output_embeddings()(hidden[labelled]).float()
    targets = targets[labelled]
    count = labelled.sum() if num_items_in_batch is None else num_items_in_batch
    loss = F.cross_entropy(logits, targets, reduction="sum") / torch.as_tensor(count, device=logits.device).clamp(min=1)
    return loss, logits, targets


class ReplyLossTrainer(SFTTrainer):
    """SFTTrainer with `reply_loss`; logs the token accuracy of the labelled tokens."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.accelerator.unwrap_model(model) is not model:
            # A wrapped model (DDP on several processes) must run its own forward: the model's own loss.
            inputs = {**inputs, "use_cache": False}
            loss = model(**inputs).loss
            return (loss, None) if return_outputs else loss
        with self.accelerator.autocast():  # accelerate autocasts the model's forward only, which this bypasses
            loss, logits, targets = reply_loss(model, inputs, num_items_in_batch)
        if model.training:
            with torch.no_grad():
                self._metrics["train"]["mean_token_accuracy"].append((logits.argmax(-1) == targets).float().mean().item())
        return (loss, logits) if return_outputs else loss


def _as_pil(image) -> Image.Image:
    return image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))


def newest_checkpoint(output: Path) -> Path | None:
    checkpoints = [path for path in output.glob("checkpoint-*") if path.name.split("-")[-1].isdigit()]
    return max(checkpoints, key=lambda path: int(path.name.split("-")[-1])) if checkpoints else None


RESULT_FILE = "sft_result.json"  # written when a run finishes, with the settings that produced it


@writes_folder(lambda call: call["settings"].output_dir)
def run_sft(settings: SFTSettings) -> SFTResult:
    """Train, checkpointing every `save_steps`; a re-run with resume=True continues where it stopped,
    and one of a finished run with the same training settings returns its result without training."""
    output = Path(settings.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    finished = _finished_result(output, settings) if settings.resume else None
    if finished is not None:
        return finished
    checkpoint = newest_checkpoint(output) if settings.resume else None
    # The Trainer's own resume loads weights by raw state-dict keys, which miss this model's
    # renamed keys (transformers 5 maps them only in from_pretrained) and would silently keep
    # the initial weights. So the weights come from the checkpoint through from_pretrained; the
    # Trainer restores only the optimizer, schedule, RNG and step.
    model, processor = load_model(checkpoint or settings.model)
    model.set_attn_implementation(settings.attention)
    dataset = load_from_disk(settings.dataset)
    (output / "sft_settings.json").write_text(json.dumps(asdict(settings), indent=1))
    collator = FinalReplyCollator(processor, settings.max_length)
    config = SFTConfig(
        output_dir=str(output),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation,
        learning_rate=settings.learning_rate,
        warmup_steps=settings.warmup_steps,
        weight_decay=settings.weight_decay,
        logging_steps=settings.logging_steps,
        save_steps=settings.save_steps,
        save_total_limit=2,
        seed=settings.seed,
        report_to=[],
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        disable_tqdm=True,  # LossProgressCallback draws the bar
        use_cpu=not torch.cuda.is_available(),
        bf16=settings.bf16,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",  # kept in each checkpoint's trainer_state.json: resumes count on
    )
    trainer = ReplyLossTrainer(model=model, args=config, data_collator=collator, train_dataset=dataset,
                               processing_class=processor,
                               callbacks=[LossCurveCallback(output),
                                          *([LossProgressCallback()] if settings.progress else [])])
    trainer.remove_callback(PrinterCallback)  # it would print every log as a raw dict
    tokens_before = (TrainerState.load_from_json(str(checkpoint / TRAINER_STATE_NAME)).num_input_tokens_seen
                     if checkpoint else 0)  # the count goes on from the checkpoint's; the speed is this session's
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    seconds = time.perf_counter() - started
    trainer.save_model(str(output / "final"))
    processor.save_pretrained(str(output / "final"))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    tokens = trainer.state.num_input_tokens_seen
    result = SFTResult(str(output / "final"), trainer.state.global_step, losses[-1] if losses else None, seconds,
                       tokens, (tokens - tokens_before) / seconds if seconds else 0.0)
    (output / RESULT_FILE).write_text(json.dumps({"settings": _training_settings(settings), "result": asdict(result)},
                                                 indent=1))
    return result


def _training_settings(settings: SFTSettings) -> dict:
    return {name: value for name, value in asdict(settings).items() if name not in ("resume", "progress")}


def _finished_result(output: Path, settings: SFTSettings) -> SFTResult | None:
    # Resuming a finished run would make the Trainer take one more step past max_steps.
    path = output / RESULT_FILE
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    if stored["settings"] != _training_settings(settings):
        return None
    return SFTResult(**stored["result"])
