"""The latent level's network (OpenHA's latent actions, a VQ-VAE over action chunks): an encoder that
compresses a chunk of primitive actions into one code of a learned codebook, and a decoder that turns a
code back into primitive actions, closed loop, one per step.

- chunk: the `chunk` primitive actions from a step on (fewer at the episode's end; the missing ones are
  END, so a short chunk's code says where it stops).
- encoder: an MLP over the chunk's one-hot actions (and, with `encoder_reads_view`, the chunk's first view:
  the code then only carries what the view does not tell), quantized by
  `vector_quantize_pytorch.VectorQuantize` (k-means initialised, EMA-updated codebook, dead codes
  restarted, commitment loss).
- decoder: an ExecutorPolicy (executors.policy, the learned executors' network) whose command is the
  code's vector and the step's place in the chunk; it reads the view each step and says done at the
  chunk's last action. A code prior adds, per place in the chunk, a linear map of the code's vector to
  the action and done logits: without it the decoder followed the view more than the code (closed loop,
  it kept doing `do` while facing stone whatever the code said).
Trained end to end (train.latent): the decoder's losses reach the encoder through the quantizer's
straight-through gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from vector_quantize_pytorch import VectorQuantize

from crossagent.actions import latent
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.executors.checkpoint import load_weights, policy_config, read_config, save_module
from crossagent.envs.text_view import LOCAL_VIEW
from crossagent.executors.features import Batch, stack, step_input
from crossagent.executors.observation import STATUS_SIZE, SYMBOLS, parse_view
from crossagent.executors.policy import ExecutorPolicy, PolicyConfig

END = len(ACTION_NAMES)  # a chunk's slot after the episode ended
TRAIN_HINT = "train it with `crossagent executors train-latent --data RECORDING --out DIR`"


@dataclass(frozen=True)
class LatentConfig:
    chunk: int = 4  # primitive actions per code
    codes: int = 64  # codebook size (at most actions.latent.CODES, the tokens a model can write)
    code_dim: int = 32  # width of a code's vector
    encoder_hidden: int = 128  # width of the encoder's hidden layer
    encoder_reads_view: bool = False  # the encoder also reads the chunk's first view (symbols and status)
    decay: float = 0.8  # EMA decay of the codebook
    commitment_weight: float = 0.25  # pulls the encoder's output toward its code
    dead_code_threshold: float = 2.0  # a code chosen less often than this (EMA count) restarts on a batch vector
    hidden: int = 256  # width of the decoder policy's hidden layers
    conv_channels: int = 32  # channels of its convolutions over the view

    def __post_init__(self) -> None:
        if not 1 <= self.codes <= latent.CODES:
            raise ValueError(f"codes {self.codes} must be in 1..{latent.CODES} (the latent tokens a model can write)")
        if self.chunk < 1:
            raise ValueError(f"chunk {self.chunk} must be at least 1")

    def policy(self) -> PolicyConfig:
        return PolicyConfig(latent.NAME, self.code_dim + self.chunk, hidden=self.hidden,
                            conv_channels=self.conv_channels)


def chunk_at(actions: Sequence[int], start: int, length: int) -> list[int]:
    """The chunk of action indices from `start`, END-padded to `length`."""
    taken = list(actions[start:start + length])
    return taken + [END] * (length - len(taken))


class LatentModel(nn.Module):
    def __init__(self, config: LatentConfig):
        super().__init__()
        self.config = config
        view_size = LOCAL_VIEW[0] * LOCAL_VIEW[1] * len(SYMBOLS) + STATUS_SIZE if config.encoder_reads_view else 0
        self.encoder = nn.Sequential(nn.Linear(config.chunk * (END + 1) + view_size, config.encoder_hidden), nn.ReLU(),
                                     nn.Linear(config.encoder_hidden, config.code_dim))
        self.quantizer = VectorQuantize(dim=config.code_dim, codebook_size=config.codes, decay=config.decay,
                                        commitment_weight=config.commitment_weight, kmeans_init=True,
                                        kmeans_iters=10, threshold_ema_dead_code=config.dead_code_threshold)
        self.decoder = ExecutorPolicy(config.policy())
        placed = config.chunk * config.code_dim  # the code's vector in the slot of the step's place
        self.code_prior = nn.Linear(placed, END + 1)  # action logits, then done

    def encode(self, chunks: torch.Tensor, views: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Chunks (N, chunk) of action indices and their first views -> (code vectors (N, code_dim), codes (N,),
        commitment loss)."""
        features = [nn.functional.one_hot(chunks, END + 1).float().flatten(1)]
        if self.config.encoder_reads_view:
            features += [nn.functional.one_hot(views.symbols.long(), len(SYMBOLS)).float().flatten(1),
                         views.vector[:, :STATUS_SIZE]]
        return self.quantizer(self.encoder(torch.cat(features, 1)))

    @torch.no_grad()
    def codes_of(self, chunks: torch.Tensor, views: Batch) -> torch.Tensor:
        """The code of each chunk (what the encoder labels a step with)."""
        was_training = self.training
        self.eval()
        codes = self.encode(chunks, views)[1]
        self.train(was_training)
        return codes

    def label(self, actions: Sequence[int], texts: Sequence[str]) -> list[int]:
        """The code of the chunk that starts at every step of an episode: its actions and text views."""
        chunks = [chunk_at(actions, start, self.config.chunk) for start in range(len(actions))]
        return self.codes_of(torch.tensor(chunks, dtype=torch.long).view(-1, self.config.chunk),
                             stack([first_view(text) for text in texts])).tolist()

    def code_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        return self.quantizer.get_output_from_indices(codes)

    def command(self, vectors: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The decoder's command: the code's vector and the step's place in the chunk (0..chunk-1)."""
        return torch.cat([vectors, nn.functional.one_hot(positions, self.config.chunk).float()], 1)

    def decode(self, inputs: Batch, vectors: torch.Tensor, positions: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(action logits, done logits) of steps, each with its chunk's code vector and its place in it."""
        action_logits, done_logits = self.decoder(Batch(inputs.symbols, inputs.target, inputs.facing,
                                                        self.command(vectors, positions), inputs.vector))
        placed = nn.functional.one_hot(positions, self.config.chunk).float()[:, :, None] * vectors[:, None, :]
        prior = self.code_prior(placed.flatten(1))
        return action_logits + prior[:, :END], done_logits + prior[:, END]


def first_view(text: str):
    """What the encoder reads of a chunk's first step (executors.features.StepInput; the history is empty)."""
    return step_input(parse_view(text), [], None, [], 0)


def save_latent(model: LatentModel, folder: str | Path, training: dict | None = None) -> None:
    save_module(model, folder, {"policy": asdict(model.decoder.config), "latent": asdict(model.config)}, training)


def load_latent(folder: str | Path) -> LatentModel:
    """The codebook and decoder in `folder`, in eval mode."""
    folder = Path(folder)
    config = read_config(folder, TRAIN_HINT)
    if policy_config(folder, config, TRAIN_HINT).level != latent.NAME or not isinstance(config.get("latent"), dict):
        raise ValueError(f"{folder} holds the {config['policy'].get('level')} executor, not the latent codebook")
    try:
        latent_config = LatentConfig(**config["latent"])
    except TypeError as error:
        raise ValueError(f"{folder} lacks settings of the latent codebook ({error}); {TRAIN_HINT} again") from None
    return load_weights(LatentModel(latent_config), folder, TRAIN_HINT)
