"""``msvae candidates import`` run as a command, against SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from databases import database_url_fixture

from app.cli.candidates import run_import
from app.db import Candidate, Database

db_url = database_url_fixture()


def _import(db_url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "candidates", "import", *args],
        cwd=cwd,
        env={**os.environ, "MSVAE_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_prints_counts_and_rejected_lines_and_is_idempotent(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "mols.smi"
    path.write_text("CCO ethanol\nnot-a-smiles\nc1ccccc1 benzene\nOCC\n")

    first = _import(db_url, str(path), "--source", "unit-test", cwd=tmp_path)  # migrates the empty database
    assert first.returncode == 0, first.stderr
    assert "added 2, duplicate 1, rejected 1" in first.stdout
    assert "line 2:" in first.stdout and "not-a-smiles" in first.stdout

    again = _import(db_url, str(path), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "added 0, duplicate 3, rejected 1" in again.stdout

    database = Database(db_url)
    with database.session() as session:
        assert sorted(session.scalars(sa.select(Candidate.source))) == ["unit-test", "unit-test"]
    database.dispose()


def test_unreadable_inputs_exit_with_a_message(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process (the command's own function): a subprocess per case would mostly time Python start-up.
    monkeypatch.setenv("MSVAE_DATABASE_URL", db_url)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)))
    assert run_import(str(junk)) == 1
    assert "binary" in capsys.readouterr().err
    assert run_import(str(tmp_path / "missing.smi")) == 1
    assert "no such file" in capsys.readouterr().err


def test_import_stores_the_served_models_fingerprint(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Molecules are stored with the fingerprint of the model ``MSVAE_MODEL`` serves, read from its directory, so
    the service does not recompute them at start-up."""
    from models.spectra_model import SpectraModel

    SpectraModel.create("mlp", spectrum_hidden=(8,), fingerprint_spec="morgan3-1024", name="small").save(tmp_path / "m")
    monkeypatch.setenv("MSVAE_DATABASE_URL", db_url)
    monkeypatch.setenv("MSVAE_MODEL", str(tmp_path / "m"))
    (tmp_path / "mols.smi").write_text("CCO\nc1ccccc1\n")
    assert run_import(str(tmp_path / "mols.smi")) == 0
    database = Database(db_url)
    with database.session() as session:
        stored = list(session.scalars(sa.select(Candidate.fingerprint)))
        specs = set(session.scalars(sa.select(Candidate.fingerprint_spec)))
    database.dispose()
    assert specs == {"morgan3-1024"} and {len(fp) for fp in stored} == {1024 // 8}
