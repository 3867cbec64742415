"""Shared fixtures. The local data sets live in ``../shared/data`` beside the project (see its README);
``MSVAE_SHARED_DATA`` points elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The folder of the local public data sets (``MSVAE_SHARED_DATA`` or ``../shared/data``)."""
    return Path(os.environ.get("MSVAE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.fail(f"shared data folder {path} is missing; set MSVAE_SHARED_DATA")
    return path


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: the tests' tensors are small, and two threads on a busy 2-core machine
    oversubscribe it badly (seen: a 200x slower step)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist(shared_data):
    """The full MNIST set (read once per test session; treat as read-only)."""
    from training.data.mnist import load_mnist

    return load_mnist(shared_data)


@pytest.fixture(scope="session")
def mnist_oracle(shared_data):
    """The shipped MMVAE LeNet MNIST digit oracle."""
    from training.oracles import load_mnist_svhn_oracle

    return load_mnist_svhn_oracle("mnist", shared_data / "mnist_svhn")
