"""Cold-start SFT: supervised fine-tuning on chat examples, loss on the assistant turns only.

TRL's SFTTrainer runs the loop (optimizer, schedule, checkpoints, resume, accelerate for
multi-GPU). We hand it our own collator because its vision-dataset preparation expects the
hub's chat templates. The collator renders each example with the processor's chat template,
batches images and text with the processor, and masks every label except the tokens of the
assistant replies (from `<|im_start|>assistant\n` to the `<|im_end|>` that closes the turn).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import load_from_disk
from PIL import Image
from transformers import PrinterCallback, TrainerState
from transformers.trainer import TRAINER_STATE_NAME
from trl import SFTConfig, SFTTrainer

from crossagent.models.loading import load_model
from crossagent.folder_lock import writes_folder
from crossagent.train.curves import LossCurveCallback, LossProgressCallback

IGNORE_INDEX = -100
ASSISTANT_PREFIX = "<|im_start|>assistant\n"
TURN_END = "<|im_end|>"


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


class AssistantOnlyCollator:
    """Chat examples -> model inputs with labels on the assistant replies only."""

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
        batch = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt",
                               truncation=False)
        if batch["input_ids"].shape[1] > self.max_length:
            raise ValueError(f"an example is {batch['input_ids'].shape[1]} tokens, over max_length {self.max_length}; "
                             "shorten the history or raise max_length (truncating would cut images apart)")
        batch["labels"] = self.assistant_labels(batch["input_ids"], batch["attention_mask"])
        return batch

    def assistant_labels(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        prefix = self.prefix_ids
        for row, ids in enumerate(input_ids.tolist()):
            position = 0
            while position < len(ids):
                if ids[position:position + len(prefix)] == prefix:
                    start = position + len(prefix)
                    end = start
                    while end < len(ids) and ids[end] != self.end_id:
                        end += 1
                    # The reply and its closing <|im_end|>: the model must learn to stop.
                    labels[row, start:end + 1] = input_ids[row, start:end + 1]
                    position = end + 1
                else:
                    position += 1
        return labels.masked_fill(attention_mask == 0, IGNORE_INDEX)


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
    dataset = load_from_disk(settings.dataset)
    (output / "sft_settings.json").write_text(json.dumps(asdict(settings), indent=1))
    collator = AssistantOnlyCollator(processor, settings.max_length)
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
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",  # kept in each checkpoint's trainer_state.json: resumes count on
    )
    trainer = SFTTrainer(model=model, args=config, data_collator=collator, train_dataset=dataset,
                         processing_class=processor,
                         callbacks=[LossCurveCallback(output), *([LossProgressCallback()] if settings.progress else [])])
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
