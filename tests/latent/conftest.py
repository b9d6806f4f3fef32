"""A small latent codebook trained on the executors' small expert recording, once per session."""

from __future__ import annotations

import pytest

from dataclasses import replace

from crossagent.executors.latent_model import LatentConfig
from crossagent.train.latent import LatentTrainConfig, train_latent
from tests.executors.conftest import episodes, recording  # noqa: F401  (the recording fixtures)

SMALL = LatentConfig(codes=8, code_dim=8, encoder_hidden=16, hidden=32, conv_channels=8)
QUICK = LatentTrainConfig(epochs=2, batch_size=8)


@pytest.fixture(scope="session")
def checkpoints(recording, tmp_path_factory):  # noqa: F811
    """An executors folder whose `latent` sub-folder holds the codebook."""
    folder = tmp_path_factory.mktemp("executors")
    train_latent(recording, folder / "latent", SMALL, QUICK, progress=False)
    return folder


@pytest.fixture(scope="session")
def view_checkpoints(recording, tmp_path_factory):  # noqa: F811
    """The same with an encoder that also reads the chunk's first view."""
    folder = tmp_path_factory.mktemp("executors")
    train_latent(recording, folder / "latent", replace(SMALL, encoder_reads_view=True), QUICK, progress=False)
    return folder
