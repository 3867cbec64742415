"""Shared by the service tests (tests/test_api_*.py, test_worker*.py, test_web*.py, test_docker*.py): the model
to serve, a MassBank sample, and a live ``msvae serve`` with its environment."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from live_server import LiveServer

from models.spectra_model import DEFAULT_MODEL_DIR, SpectraModel

MASSBANK = "massbank/massbank-pos-ms2.mgf.gz"


def serving_model(folder: Path) -> str:
    """``"default"`` when the shipped model is there; else a small untrained model saved into ``folder`` (a real
    model directory written by ``SpectraModel.save``; rankings are then arbitrary but well defined)."""
    if (DEFAULT_MODEL_DIR / "config.json").is_file():
        return "default"
    path = folder / "tiny"
    if not (path / "config.json").is_file():
        SpectraModel.create("mlp", spectrum_hidden=(32,), name="tiny").save(path)
    return str(path)


def massbank_sample(shared_data: Path, n: int, *, distinct: bool = True) -> bytes:
    """The first ``n`` MassBank MGF blocks, as written in the shared file (one per structure when ``distinct``)."""
    blocks: list[str] = []
    seen: set[str] = set()
    block: list[str] = []
    with gzip.open(shared_data / MASSBANK, "rt") as stream:
        for line in stream:
            block.append(line)
            if line.strip() != "END IONS":
                continue
            smiles = next(x for x in block if x.startswith("SMILES="))
            if not distinct or smiles not in seen:
                seen.add(smiles)
                blocks.append("".join(block))
            block = []
            if len(blocks) == n:
                break
    return "".join(blocks).encode()


def server_env(database_url: str, model: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """``MSVAE_*`` variables of a test server (extra keys are given without the prefix, e.g. API_KEY="k"). The
    database starts empty unless ``DEFAULT_CANDIDATES="true"`` is given."""
    env = {"MSVAE_DATABASE_URL": database_url, "MSVAE_MODEL": model, "MSVAE_DATA_DIR": str(data_dir),
           "MSVAE_DEFAULT_CANDIDATES": "false"}  # fmt: skip
    env.update({f"MSVAE_{key.upper()}": value for key, value in extra.items()})
    return env


@contextmanager
def live_server(env: dict[str, str], folder: Path, workers: int = 1) -> Iterator[LiveServer]:
    """A started server with ``workers`` processes (stopped afterwards; its log is printed by pytest when a test
    fails)."""
    server = LiveServer(env, folder / "server.log", workers=workers).start()
    try:
        yield server
    finally:
        server.stop()
        print(server.log_tail())
