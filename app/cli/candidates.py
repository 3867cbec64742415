"""``msvae candidates import FILE [--source NAME]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``candidates import`` to the ``msvae`` subcommands."""
    p = sub.add_parser("candidates", help="candidate molecule database")
    commands = p.add_subparsers(dest="candidates_command", required=True)
    p = commands.add_parser("import", help="add molecules (SMILES list, TSV, SDF or MGF headers)")
    p.add_argument("file", help="SMILES per line, TSV with a smiles column, SDF, or MGF with SMILES= headers")
    p.add_argument("--source", default=None, help="where the molecules come from (default: the file name)")
    p.set_defaults(func=lambda args: run_import(args.file, source=args.source))


def run_import(file: str, source: str | None = None) -> int:
    """Import ``file`` into ``MSVAE_DATABASE_URL`` (migrating it first); print the counts and every rejected
    record. Returns the exit status: 0, or 1 when the file cannot be read at all."""
    from app.candidates.default import served_fingerprint_spec
    from app.candidates.importer import import_candidates
    from app.candidates.readers import CandidateFileError
    from app.db import Database
    from app.db.migrate import upgrade_database
    from app.settings import get_settings

    settings = get_settings()
    path = Path(file)
    if not path.is_file():
        print(f"msvae candidates import: {file}: no such file", file=sys.stderr)
        return 1
    upgrade_database(settings.database_url)
    database = Database(settings.database_url)
    try:
        with database.session() as session:
            spec = served_fingerprint_spec(settings)
            report = import_candidates(session, path, source=source or path.name, spec=spec)
    except CandidateFileError as exc:
        print(f"msvae candidates import: {file}: {exc}", file=sys.stderr)
        return 1
    finally:
        database.dispose()
    print(
        f"{file} ({report.format}, fingerprint {spec}): added {report.added}, duplicate {report.duplicate}, "
        f"rejected {len(report.rejected)}"
    )
    for rejection in report.rejected:
        print(f"  rejected {rejection}")
    return 0
