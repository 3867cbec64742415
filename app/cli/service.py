"""``msvae serve`` and ``msvae db upgrade``."""

from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` and ``db upgrade`` to the ``msvae`` subcommands."""
    p = sub.add_parser("serve", help="run the HTTP service (migrates the database first)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes, each with the model (default 1)")
    p.set_defaults(func=_serve)

    p = sub.add_parser("db", help="database administration")
    db = p.add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="migrate MSVAE_DATABASE_URL; an empty one gets the default candidates")
    up.set_defaults(func=_db_upgrade)


def _serve(args: argparse.Namespace) -> int:
    from app.main import serve

    serve(args.host, args.port, args.workers)
    return 0


def _db_upgrade(_: argparse.Namespace) -> int:
    from app.db.migrate import current_revision
    from app.main import prepare_database
    from app.settings import get_settings

    settings = get_settings()
    prepare_database(settings)
    print(f"database at revision {current_revision(settings.database_url)} (head)")
    return 0
