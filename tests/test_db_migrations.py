"""Alembic migrations from empty to head and back, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from databases import database_url_fixture

import app.db.tables  # noqa: F401  (registers the tables)
from app.db import Base, make_engine
from app.db.migrate import current_revision, downgrade_database, head_revision, upgrade_database

db_url = database_url_fixture()

TABLES = {"candidates", "candidate_imports", "jobs", "job_spectra"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_from_empty_creates_every_table_and_index(db_url: str) -> None:
    assert current_revision(db_url) is None
    assert _tables(db_url) == set()
    upgrade_database(db_url)
    assert current_revision(db_url) == head_revision()
    assert _tables(db_url) == TABLES
    engine = make_engine(db_url)
    inspector = sa.inspect(engine)
    indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes("candidates")}
    assert {("inchikey_block",), ("formula",), ("monoisotopic_mass",)} <= indexed
    uniques = {tuple(uq["column_names"]) for uq in inspector.get_unique_constraints("job_spectra")}
    assert ("job_id", "spectrum_index") in uniques
    engine.dispose()


def test_migrated_schema_matches_the_orm(db_url: str) -> None:
    """The hand-written revisions and the ORM tables describe the same schema (no pending autogenerate)."""
    upgrade_database(db_url)
    engine = make_engine(db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_upgrade_is_idempotent_and_downgrade_then_upgrade_works(db_url: str) -> None:
    upgrade_database(db_url)
    upgrade_database(db_url)
    assert current_revision(db_url) == head_revision()
    downgrade_database(db_url)
    assert current_revision(db_url) is None
    assert _tables(db_url) == set()
    upgrade_database(db_url)
    assert _tables(db_url) == TABLES


def test_cli_db_upgrade_finds_the_packaged_migrations_from_any_directory(db_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "MSVAE_DATABASE_URL": db_url, "MSVAE_DEFAULT_CANDIDATES": "false"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "db", "upgrade"],
        cwd=tmp_path,  # not the repository: the migrations must come from the package
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert head_revision() in done.stdout
    assert current_revision(db_url) == head_revision()
    assert _tables(db_url) == TABLES
