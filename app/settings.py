"""Service settings from ``MSVAE_*`` environment variables (pydantic-settings); see DESIGN.md."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from models.featurize.reading import ReadLimits


def default_data_dir() -> Path:
    """The per-user data folder: ``$XDG_DATA_HOME/msvae`` (``~/.local/share/msvae``) on Linux,
    ``~/Library/Application Support/msvae`` on macOS, ``%LOCALAPPDATA%\\msvae`` on Windows."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "msvae"


class Settings(BaseSettings):
    """Everything the service, the worker and the CLI read from the environment.

    The data folder is not created here; whatever writes into it (the SQLite engine, uploads) creates it.
    """

    model_config = SettingsConfigDict(env_prefix="MSVAE_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="folder for the SQLite file and job data")
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means the SQLite file msvae.sqlite in data_dir"
    )
    model: str = Field(default="default", description="path or registered name of the model to serve")
    device: str = Field(default="auto", description="'auto' (CUDA when available, else CPU), 'cpu', 'cuda:0', ...")
    api_key: str | None = Field(default=None, repr=False, description="when set, write endpoints require it")
    max_upload_mb: float = Field(default=50.0, gt=0, description="largest accepted upload, in MiB")
    default_candidates: bool = Field(
        default=True, description="load the project's default candidate set into an empty database at start-up"
    )
    fingerprint_cache_size: int = Field(
        default=100_000, ge=0, description="candidate molecules sent as SMILES kept featurized (least recently used go)"
    )
    worker_poll_seconds: float = Field(default=1.0, gt=0, description="how often an idle job worker looks for work")

    # Limits on what one request may cost (DESIGN.md "Limits"); each refusal names its MSVAE_* variable.
    max_decompressed_mb: float = Field(
        default=200.0, gt=0, description="largest spectrum file after gzip decompression, in MiB (read streamed)"
    )
    max_spectra_per_request: int = Field(
        default=1000, ge=1, description="spectra in one POST /v1/annotate; larger batches go to POST /v1/jobs"
    )
    max_spectra_per_job: int = Field(default=200_000, ge=1, description="spectra in one POST /v1/jobs")
    max_peaks: int = Field(default=20_000, ge=1, description="peaks per spectrum")
    max_candidates: int = Field(default=10_000, ge=1, description="candidate SMILES given with one spectrum")
    max_smiles_length: int = Field(default=2000, ge=1, description="characters of one candidate SMILES")
    max_json_depth: int = Field(default=16, ge=4, description="nesting depth of a JSON body (spectra need 4)")
    request_timeout_seconds: float = Field(
        default=60.0, gt=0, description="time budget of one request: receiving the body and the work together"
    )
    # How the annotation work of requests shares the machine (app.scheduler).
    light_slots: int = Field(default=2, ge=1, description="requests in their first light_seconds of work at once")
    heavy_slots: int = Field(
        default=max(1, (os.cpu_count() or 2) - 1), ge=1, description="requests past light_seconds of work at once"
    )
    light_seconds: float = Field(
        # 2 s: beside heavy requests, small ones took up to 0.7 s (p99) in benchmarks/hostile.py's soak; past this
        # a request queues behind the heavy ones, so it must sit above what a small request needs under load
        default=2.0,
        gt=0,
        description="work a request may do in a light slot before it queues for a heavy one",
    )
    max_waiting: int = Field(default=16, ge=0, description="requests queued for a heavy slot; more get 503")

    @field_validator("data_dir")
    @classmethod
    def _expand_user(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="after")
    def _default_database_url(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'msvae.sqlite').as_posix()}"
        return self

    @property
    def max_upload_bytes(self) -> int:
        """``max_upload_mb`` in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_decompressed_bytes(self) -> int:
        """``max_decompressed_mb`` in bytes."""
        return int(self.max_decompressed_mb * 1024 * 1024)

    def read_limits(self, *, job: bool, check: Callable[[], None] | None = None) -> ReadLimits:
        """The bounds on reading one uploaded spectrum file, for a batch job or a synchronous request; their
        messages name these settings."""
        from models.featurize.reading import ReadLimits  # here: reading settings must not load RDKit and torch

        spectra = "max_spectra_per_job" if job else "max_spectra_per_request"
        names = {"max_bytes": "max_decompressed_mb", "max_spectra": spectra, "max_peaks": "max_peaks"}
        return ReadLimits(
            max_bytes=self.max_decompressed_bytes,
            max_spectra=getattr(self, spectra),
            max_peaks=self.max_peaks,
            check=check,
            names={limit: setting_name(field) for limit, field in names.items()},
        )


def setting_name(field: str) -> str:
    """The environment variable of a :class:`Settings` field (``max_peaks`` -> ``MSVAE_MAX_PEAKS``), for messages."""
    assert field in Settings.model_fields, field
    return f"MSVAE_{field.upper()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment (``msvae`` reads them afresh per command; tests
    build ``Settings(...)`` instead)."""
    return Settings()
