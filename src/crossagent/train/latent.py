"""Training of the latent level (executors.latent_model): the chunk encoder, its codebook and the decoder,
end to end on a recorded expert trajectory (data.latent_examples).

Episodes are split into training and validation (by episode, as train.executors). Each optimizer step
takes `batch_size` chunks, encodes them, and decodes every step of each chunk teacher-forced (the
recorded view and actions so far): cross-entropy for the action, binary cross-entropy for done, plus
the quantizer's commitment loss; the codebook itself follows its vectors by EMA. Losses go to
`loss_curve.csv` as they come and `loss_curve.png` at the end. The checkpoint records the held-out
chunks' codebook use (codes used of K, perplexity) and reconstruction (teacher-forced accuracy per
action and per whole chunk). A folder holding a checkpoint from the same settings and data is kept;
one from other settings is refused, naming what differs.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from crossagent.data.latent_examples import LatentExamples, latent_examples
from crossagent.data.recording import episodes_of, load_trajectories, read_manifest
from crossagent.executors.checkpoint import read_config
from crossagent.executors.latent_model import TRAIN_HINT, LatentConfig, LatentModel, save_latent
from crossagent.fingerprint import fingerprint
from crossagent.folder_lock import writes_folder
from crossagent.train.executors import trained_with
from crossagent.train.minibatch_loop import Minibatches, fit_minibatches

EVAL_BATCH = 4096  # rows decoded at once when measuring


@dataclass(frozen=True)
class LatentTrainConfig:
    epochs: int = 4  # passes over the training chunks
    batch_size: int = 64  # chunks per optimizer step (each decodes its `chunk` steps)
    learning_rate: float = 1e-3
    done_weight: float = 1.0  # weight of the done loss next to the action loss
    validation_share: float = 0.1  # share of episodes held out to measure the codebook
    seed: int = 0


@dataclass(frozen=True)
class LatentResult:
    skipped: bool  # already trained with these settings
    chunks: int  # training chunks
    seconds: float
    validation: dict  # held-out codebook use and reconstruction


@writes_folder(lambda call: call["out"])
def train_latent(data: str | Path, out: str | Path, model_config: LatentConfig = LatentConfig(),
                 config: LatentTrainConfig = LatentTrainConfig(), progress: bool = True) -> LatentResult:
    """Train the latent level from the recording `data` into the checkpoint folder `out`."""
    manifest = read_manifest(data)
    settings = {"model": asdict(model_config), "config": asdict(config), "data": fingerprint(manifest["episodes"])}
    out = Path(out)
    if trained_with(out, settings, TRAIN_HINT):
        training = read_config(out, TRAIN_HINT)["training"]
        return LatentResult(True, training.get("chunks", 0), 0.0, training.get("validation", {}))
    started = time.perf_counter()
    episodes = episodes_of(load_trajectories(data))
    random.Random(config.seed).shuffle(episodes)
    held = max(1, int(len(episodes) * config.validation_share)) if len(episodes) > 1 else 0
    torch.manual_seed(config.seed)
    train = latent_examples(episodes[held:], model_config.chunk)
    model = LatentModel(model_config)
    fit(model, train, config, out, progress)
    scores = codebook_scores(model, latent_examples(episodes[:held], model_config.chunk)) if held else {}
    seconds = time.perf_counter() - started
    save_latent(model, out, {"settings": settings, "chunks": len(train.chunks), "episodes": len(episodes) - held,
                             "seconds": round(seconds, 1), "validation": scores})
    return LatentResult(False, len(train.chunks), seconds, scores)


def fit(model: LatentModel, data: LatentExamples, config: LatentTrainConfig, folder: Path, progress: bool) -> None:
    def step_loss(batch: torch.Tensor) -> tuple[torch.Tensor, Callable[[], dict[str, float]]]:
        action_loss, done_loss, commitment, codes = losses(model, data, batch)
        loss = action_loss + config.done_weight * done_loss + commitment
        return loss, lambda: {"loss": loss.item(), "action_loss": action_loss.item(), "done_loss": done_loss.item(),
                              "commitment_loss": commitment.item(),
                              "batch_perplexity": perplexity(codes, model.config.codes)}

    fit_minibatches(model, Minibatches(len(data.chunks), config.epochs, config.batch_size, config.learning_rate,
                                       config.seed), step_loss,
                    ("loss", "action_loss", "done_loss", "commitment_loss", "batch_perplexity"), folder,
                    "latent codebook and decoder", progress)


def losses(model: LatentModel, data: LatentExamples, batch: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Action, done and commitment losses of the chunks `batch` (every step of each), and their codes."""
    rows, local = rows_of(data, batch)
    vectors, codes, commitment = model.encode(data.chunks[batch], data.first_views(batch))
    action_logits, done_logits = model.decode(data.inputs.select(rows), vectors[local], data.positions[rows])
    return (nn.functional.cross_entropy(action_logits, data.actions[rows]),
            nn.functional.binary_cross_entropy_with_logits(done_logits, data.done[rows]), commitment.sum(), codes)


def rows_of(data: LatentExamples, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of the chunks in `batch`, and for each row its chunk's place in `batch`."""
    rows = torch.isin(data.chunk_index, batch).nonzero().squeeze(1)
    place = torch.full((len(data.chunks),), -1, dtype=torch.long)
    place[batch] = torch.arange(len(batch))
    return rows, place[data.chunk_index[rows]]


def perplexity(codes: torch.Tensor, size: int) -> float:
    """exp of the entropy of the codes' frequencies: the number of equally used codes it amounts to."""
    counts = torch.bincount(codes.flatten(), minlength=size).float()
    shares = counts[counts > 0] / counts.sum()
    return math.exp(-(shares * shares.log()).sum().item())


@torch.no_grad()
def codebook_scores(model: LatentModel, data: LatentExamples) -> dict:
    """On chunks the model did not train on: how many codes the encoder uses and how evenly, and how well the
    decoder rebuilds each chunk from its code (teacher-forced: the recorded views and actions so far)."""
    model.eval()
    codes = model.codes_of(data.chunks, data.first_views(torch.arange(len(data.chunks))))
    vectors = model.code_vectors(codes)
    right = []
    for rows in torch.arange(len(data)).split(EVAL_BATCH):
        action_logits, done_logits = model.decode(data.inputs.select(rows), vectors[data.chunk_index[rows]],
                                                  data.positions[rows])
        right.append(torch.stack([action_logits.argmax(1) == data.actions[rows],
                                  (done_logits > 0) == (data.done[rows] > 0.5)], 1))
    right = torch.cat(right)
    whole = right.all(1)
    wrong_per_chunk = torch.bincount(data.chunk_index, weights=(~whole).float(), minlength=len(data.chunks))
    return {"chunks": len(data.chunks), "distinct_chunks": len(torch.unique(data.chunks, dim=0)),
            "codes_used": int((torch.bincount(codes, minlength=model.config.codes) > 0).sum()),
            "codes": model.config.codes, "perplexity": round(perplexity(codes, model.config.codes), 2),
            "action_accuracy": round(right[:, 0].float().mean().item(), 4),
            "done_accuracy": round(right[:, 1].float().mean().item(), 4),
            "chunk_accuracy": round((wrong_per_chunk == 0).float().mean().item(), 4)}
