"""Throw-away databases for tests: a SQLite file, and a fresh PostgreSQL schema when
``MSVAE_TEST_POSTGRES_URL`` is set. A test kit (it needs pytest).

In a test module, ``db_url = database_url_fixture()`` gives each test that asks for ``db_url`` an empty
database URL, once per backend; ``migrated_database(db_url)`` opens it migrated to head.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateSchema, DropSchema

from app.db.engine import Database, make_engine, normalize_database_url

POSTGRES_ENV = "MSVAE_TEST_POSTGRES_URL"


@contextmanager
def scratch_database(kind: str, folder: Path) -> Iterator[str]:
    """The URL of an empty database of ``kind`` ("sqlite" or "postgresql"), removed afterwards.

    PostgreSQL gets a schema of its own (via ``search_path``), so concurrent test runs on one server
    never see each other's tables.
    """
    if kind == "sqlite":
        yield f"sqlite:///{(folder / 'test.sqlite').as_posix()}"
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    server = normalize_database_url(os.environ[POSTGRES_ENV])
    schema = f"msvae_test_{uuid.uuid4().hex[:16]}"
    admin = make_engine(server, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(CreateSchema(schema))
    try:
        url = server.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(DropSchema(schema, cascade=True))
        admin.dispose()


def database_params() -> list[Any]:
    """``pytest.param`` for each backend; PostgreSQL is skipped when ``MSVAE_TEST_POSTGRES_URL`` is unset."""
    skip_pg = pytest.mark.skipif(not os.environ.get(POSTGRES_ENV), reason=f"{POSTGRES_ENV} is not set")
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=[pytest.mark.postgres, skip_pg]),
    ]


def database_url_fixture(name: str = "db_url") -> Callable[..., Iterator[str]]:
    """A pytest fixture, parametrized over the backends, yielding an empty (unmigrated) database URL."""

    @pytest.fixture(name=name, params=database_params())
    def fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
        with scratch_database(request.param, tmp_path) as url:
            yield url

    return fixture


@contextmanager
def migrated_database(url: str) -> Iterator[Database]:
    """The database at ``url`` migrated to head, disposed of afterwards."""
    from app.db.migrate import upgrade_database

    upgrade_database(url)
    database = Database(url)
    try:
        yield database
    finally:
        database.dispose()
