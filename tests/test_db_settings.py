"""Settings from MSVAE_* variables, and engines from URLs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db import make_engine, normalize_database_url
from app.settings import Settings


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG data folder is the Linux default")
def test_defaults_put_the_sqlite_file_in_the_per_user_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("MSVAE_DATA_DIR", "MSVAE_DATABASE_URL", "MSVAE_API_KEY", "MSVAE_MAX_UPLOAD_MB", "MSVAE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    settings = Settings()
    assert settings.data_dir == tmp_path / "msvae"
    assert settings.database_url == f"sqlite:///{tmp_path}/msvae/msvae.sqlite"
    assert (settings.model, settings.device, settings.api_key) == ("default", "auto", None)
    assert settings.max_upload_bytes == 50 * 1024 * 1024
    assert not settings.data_dir.exists()  # created on demand, not by reading settings


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MSVAE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("MSVAE_API_KEY", "s3cret")
    monkeypatch.setenv("MSVAE_MAX_UPLOAD_MB", "0.5")
    monkeypatch.setenv("MSVAE_DATABASE_URL", "postgresql+psycopg://u@h/db")
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.api_key == "s3cret" and "s3cret" not in repr(settings)
    assert settings.max_upload_bytes == 512 * 1024
    with pytest.raises(ValueError):
        Settings(max_upload_mb=0)


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg"),
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.sqlite", "sqlite"),
    ],
)
def test_database_urls_use_the_installed_drivers(url: str, driver: str) -> None:
    assert normalize_database_url(url).drivername == driver


def test_sqlite_engine_creates_its_folder_and_enables_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "db.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
    assert path.is_file()
