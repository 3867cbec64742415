"""Alembic migrations of the msvae database, shipped as a package so an installed ``msvae`` finds them
whatever the working directory."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, text
from sqlalchemy.pool import NullPool

from app.db.engine import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent

# Any constant works; it only has to be the same for every process migrating the same PostgreSQL database.
_PG_MIGRATION_LOCK = 7_236_117_913


def alembic_config() -> Config:
    """An Alembic config whose script location is this package (no ini file, no cwd involved)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest revision shipped with this version."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts in {MIGRATIONS_DIR}")
    return head


def _run(url: str | URL, action: str, revision: str) -> None:
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several processes starting at once (service replicas) migrate one after the other.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            config = alembic_config()
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)
    finally:
        engine.dispose()


def upgrade_database(url: str | URL, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (default: the newest); a no-op when already there."""
    _run(url, "upgrade", revision)


def downgrade_database(url: str | URL, revision: str = "base") -> None:
    """Undo the migrations down to ``revision`` (default: drop every table)."""
    _run(url, "downgrade", revision)


def current_revision(url: str | URL) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
