"""Service settings from ``MSVAE_*`` environment variables (pydantic-settings); see DESIGN.md."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    fingerprint_cache_size: int = Field(
        default=100_000, ge=0, description="candidate molecules sent as SMILES kept featurized (least recently used go)"
    )
    worker_poll_seconds: float = Field(default=1.0, gt=0, description="how often an idle job worker looks for work")

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment (tests build ``Settings(...)`` instead)."""
    return Settings()
