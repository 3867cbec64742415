"""``msvae candidates import``: add molecules to the candidate database."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``candidates import`` to the ``msvae`` subcommands."""
    p = sub.add_parser("candidates", help="candidate molecule database")
    commands = p.add_subparsers(dest="candidates_command", required=True)
    p = commands.add_parser("import", help="add molecules (SMILES list, TSV, SDF or MGF headers)")
    p.add_argument("file", help="SMILES per line, TSV with a smiles column, SDF, or MGF with SMILES= headers")
    p.add_argument("--source", default=None, help="where the molecules come from (default: the file name)")
    p.add_argument("--workers", type=int, default=None, help="processes for the RDKit work (default: every core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(
        func=lambda args: run_import(args.file, source=args.source, workers=args.workers, progress=not args.no_progress)
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_import(file: str, source: str | None = None, workers: int | None = None, progress: bool = True) -> int:
    """Import ``file`` into ``MSVAE_DATABASE_URL`` (migrating it first) with ``workers`` processes (default: one
    per core) and a progress bar on stderr; print the counts and every rejected record. Running it again after an
    interruption resumes where the last run stopped. Returns the exit status: 0, 1 when the file cannot be read
    at all, 130 when interrupted (Ctrl-C, SIGINT, SIGTERM)."""
    from app.candidates.default import served_fingerprint_spec
    from app.candidates.importer import ImportReport, import_candidates, tune_for_bulk_import
    from app.candidates.progress import ProgressBar
    from app.candidates.readers import CandidateFileError, count_records
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
    tune_for_bulk_import(database.engine)  # this engine only imports
    bar = None
    committed = [0]  # records of the file committed so far, for the message on an interruption
    # SIGTERM (kill, docker stop; SIGINT is ignored by jobs a shell starts in the background) stops the import as
    # Ctrl-C does: the process pool is shut down and the committed chunks stay, instead of workers left behind.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if progress:
            bar = ProgressBar(count_records(path), label=path.name)

        def show(done: int, report: ImportReport) -> None:
            committed[0] = done
            if bar is not None:
                bar.update(done, f"added {report.added:,}", since=report.resumed_from)

        spec = served_fingerprint_spec(settings)
        with database.session() as session:
            report = import_candidates(
                session, path, source=source or path.name, spec=spec, workers=workers or os.cpu_count() or 1,
                on_progress=show,
            )  # fmt: skip
    except CandidateFileError as exc:
        print(f"msvae candidates import: {file}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"msvae candidates import: {file}: interrupted with {committed[0]:,} records committed; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()
        database.dispose()
    resumed = f" (resumed after record {report.resumed_from:,})" if report.resumed_from else ""
    print(
        f"{file} ({report.format}, fingerprint {spec}): added {report.added}, duplicate {report.duplicate}, "
        f"rejected {len(report.rejected)}{resumed}"
    )
    for rejection in report.rejected:
        print(f"  rejected {rejection}")
    return 0
