"""Running the Alembic migrations (the top-level ``migrations`` folder) from the service's side: Alembic is pointed
at that folder, which is located but not imported, so ``app`` does not import ``migrations`` (whose ``env.py``
imports ``app.db``)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, text
from sqlalchemy.pool import NullPool

from app.db.engine import make_engine


def _migrations_dir() -> Path:
    """The folder of the installed ``migrations`` package (found, not imported)."""
    spec = find_spec("migrations")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the migrations package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


MIGRATIONS_DIR = _migrations_dir()

# Any constant works; it only has to be the same for every process migrating the same PostgreSQL database.
_PG_MIGRATION_LOCK = 7_236_117_913


def alembic_config() -> Config:
    """An Alembic config whose script location is the migrations folder (no ini file, no cwd involved)."""
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
