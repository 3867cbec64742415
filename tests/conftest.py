"""Shared fixtures. The tests read the local data sets in ``../shared/data`` beside the project (see its README;
``MSVAE_SHARED_DATA`` points elsewhere) and, where that folder is missing (a fresh clone), the small real samples
of them in ``tests/data`` (see its README). Tests marked ``full_data`` need the full sets: they are skipped on
the samples, and the summary says how many."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "data"
FULL_DATA_REASON = "needs the full data sets of ../shared/data (set MSVAE_SHARED_DATA); only tests/data is here"


def shared_data_dir() -> Path:
    """The folder of the local public data sets (``MSVAE_SHARED_DATA`` or ``../shared/data``), else the samples
    in ``tests/data``."""
    given = os.environ.get("MSVAE_SHARED_DATA")
    if given:
        return Path(given)
    full = ROOT.parent / "shared" / "data"
    return full if full.is_dir() else SAMPLES


def has_full_data() -> bool:
    """Whether the full data sets are there (not only the samples)."""
    return shared_data_dir().resolve() != SAMPLES.resolve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if has_full_data():
        return
    skip = pytest.mark.skip(reason=FULL_DATA_REASON)
    for item in items:
        if "full_data" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """One line saying how many tests were left out for want of the full data sets."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if FULL_DATA_REASON in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} tests skipped: {FULL_DATA_REASON}", yellow=True)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The data folder: the full sets, or the samples in ``tests/data`` (same layout, fewer records)."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.fail(f"data folder {path} is missing (MSVAE_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: the tests' tensors are small, and two threads on a busy 2-core machine
    oversubscribe it badly (seen: a 200x slower step)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist(shared_data):
    """MNIST (read once per test session; treat as read-only)."""
    from training.data.mnist import load_mnist

    return load_mnist(shared_data)


@pytest.fixture(scope="session")
def mnist_oracle(shared_data):
    """The shipped MMVAE LeNet MNIST digit oracle (full data only: its files carry no license to redistribute)."""
    from training.oracles import load_mnist_svhn_oracle

    if not has_full_data():
        pytest.skip(FULL_DATA_REASON)
    return load_mnist_svhn_oracle("mnist", shared_data / "mnist_svhn")


@pytest.fixture(autouse=True)
def _fresh_settings():
    """Tests set ``MSVAE_*`` variables with monkeypatch and call commands in-process: each test reads the
    environment anew, as each ``msvae`` command does (``app.cli.main`` clears the same cache)."""
    from app.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
