"""Training the latent level: chunks and rows from a recording, the held-out codebook scores and curves in
the checkpoint, a re-run kept or refused; the encoder labels each step with its chunk's code."""

from __future__ import annotations

import json

import pytest
import torch

from crossagent.actions.latent import Latent
from crossagent.data.labelling import latent_labels
from crossagent.data.latent_examples import latent_examples
from crossagent.data.recording import StepRecord
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.executors.checkpoint import CONFIG
from crossagent.envs.text_view import render_text
from crossagent.executors.features import stack
from crossagent.executors.latent_model import END, LatentConfig, LatentModel, chunk_at, first_view
from crossagent.train.curves import CURVE_CSV, CURVE_PNG
from crossagent.train.latent import LatentTrainConfig, fit, losses, train_latent
from tests.executors.test_learned_executors import game
from tests.latent.conftest import QUICK, SMALL


def test_a_chunk_starts_at_every_step_and_is_done_at_its_last(episodes):
    data = latent_examples(episodes, 4)
    steps = sum(len(e) for e in episodes)
    assert len(data.chunks) == steps
    assert len(data) == sum(min(4, len(e) - t) for e in episodes for t in range(len(e)))
    at = max(range(len(episodes)), key=lambda i: len(episodes[i]))  # a long episode, and where its chunks start
    long, start = episodes[at], sum(len(e) for e in episodes[:at])
    assert len(long) > 4
    assert data.chunks[start].tolist() == [ACTION_NAMES.index(s.action) for s in long[:4]]
    last = data.chunks[start + len(long) - 1].tolist()  # the episode's last step: one action, then END
    assert last == [ACTION_NAMES.index(long[-1].action), END, END, END]
    assert data.done.sum().item() == len(data.chunks)  # one done per chunk, at its last row
    assert chunk_at([1, 2], 1, 3) == [2, END, END]


def test_the_checkpoint_records_the_held_out_codebook_use_and_reconstruction(checkpoints):
    config = json.loads((checkpoints / "latent" / CONFIG).read_text())
    scores = config["training"]["validation"]
    assert scores["codes"] == SMALL.codes and 1 <= scores["codes_used"] <= SMALL.codes
    assert 1.0 <= scores["perplexity"] <= scores["codes_used"] + 1e-6
    for key in ("action_accuracy", "done_accuracy", "chunk_accuracy"):
        assert 0.0 <= scores[key] <= 1.0
    assert scores["chunk_accuracy"] <= scores["action_accuracy"]
    assert (checkpoints / "latent" / CURVE_CSV).exists() and (checkpoints / "latent" / CURVE_PNG).exists()
    assert config["latent"]["codes"] == SMALL.codes and config["policy"]["level"] == "latent"


def test_a_rerun_is_kept_and_other_settings_are_refused(recording, checkpoints):
    again = train_latent(recording, checkpoints / "latent", SMALL, QUICK, progress=False)
    assert again.skipped and again.validation["codes"] == SMALL.codes
    with pytest.raises(ValueError, match="trained otherwise.*epochs"):
        train_latent(recording, checkpoints / "latent", SMALL, LatentTrainConfig(epochs=3, batch_size=8),
                     progress=False)


def test_training_lowers_the_decoders_loss(episodes, tmp_path):
    torch.manual_seed(0)
    model, data = LatentModel(SMALL), latent_examples(episodes, SMALL.chunk)
    every = torch.arange(len(data.chunks))
    model.train()
    before = losses(model, data, every)[0].item()  # (this first forward initialises the codebook)
    fit(model, data, LatentTrainConfig(epochs=8, batch_size=8), tmp_path, progress=False)
    model.train()
    assert losses(model, data, every)[0].item() < before


def codebook_of(model: LatentModel, chunks: list[list[int]], text: str, codes: list[int]) -> None:
    """Set the codebook so that each chunk's encoding (from the view `text`) is exactly the vector of its code
    (the others far)."""
    views = stack([first_view(text)] * len(chunks))
    model.train()  # the first forward in training mode initialises the codebook (k-means)
    model.encode(torch.tensor(chunks), views)
    model.eval()
    with torch.no_grad():
        encoded = model.encoder(torch.nn.functional.one_hot(torch.tensor(chunks), END + 1).float().flatten(1))
        codebook = model.quantizer._codebook.embed
        codebook[:] = 100.0 + torch.arange(codebook.shape[1]).float()[None, :, None]
        for vector, code in zip(encoded, codes):
            codebook[0, code] = vector


def test_the_encoder_labels_each_step_with_the_code_of_its_chunk():
    torch.manual_seed(0)
    model = LatentModel(LatentConfig(chunk=2, codes=6, code_dim=8, encoder_hidden=16, hidden=16, conv_channels=4))
    names = ["move_left", "move_left", "do", "do", "place_table"]
    actions = [ACTION_NAMES.index(name) for name in names]
    chunks = [chunk_at(actions, t, 2) for t in range(len(actions))]  # LL, Ld, dd, dP, P-
    known = [4, 0, 5, 2, 1]
    text = render_text(game()[1])
    codebook_of(model, chunks, text, known)
    steps = [StepRecord("task", 0, t, name, (0, 0), (0, 0), text=text) for t, name in enumerate(names)]
    assert latent_labels(steps, model) == [Latent(code) for code in known]
    assert model.label(actions[2:4], [text] * 2) == [5, 2]  # a trajectory cut short: its last chunk ends early


def test_an_encoder_that_reads_the_view_trains_and_is_scored(episodes, tmp_path):
    from dataclasses import replace

    from crossagent.train.latent import codebook_scores

    torch.manual_seed(0)
    model, data = LatentModel(replace(SMALL, encoder_reads_view=True)), latent_examples(episodes, SMALL.chunk)
    fit(model, data, LatentTrainConfig(epochs=2, batch_size=8), tmp_path, progress=False)
    scores = codebook_scores(model, data)
    assert 1 <= scores["codes_used"] <= SMALL.codes and 0.0 <= scores["chunk_accuracy"] <= 1.0
