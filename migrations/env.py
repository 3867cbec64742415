"""Alembic environment: migrates the connection handed over by ``migrations.upgrade_database`` or, when the
``alembic`` tool runs it, a connection to ``sqlalchemy.url`` / ``MSVAE_DATABASE_URL``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

import app.db.tables  # noqa: F401  (registers the tables on Base.metadata)
from app.db.base import Base
from app.db.engine import make_engine
from app.settings import Settings

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or Settings().database_url


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    _configure(given)
else:
    engine = make_engine(_url(), poolclass=NullPool)
    with engine.begin() as connection:
        _configure(connection)
    engine.dispose()
