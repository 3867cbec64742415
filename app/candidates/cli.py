"""``msvae candidates import FILE [--source NAME] [--workers N] [--no-progress]``."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.candidates.importer import ImportReport, import_candidates
from app.candidates.progress import ProgressBar
from app.candidates.readers import CandidateFileError, count_records
from app.db import Database, ModelRecord
from app.settings import Settings
from migrations import upgrade_database
from models.featurize.fingerprints import DEFAULT_FINGERPRINT_SPEC


def _fingerprint_spec(session: Session, settings: Settings) -> str:
    """The spec of the model the service serves, when it is registered; else the default spec."""
    registered = session.scalar(select(ModelRecord.fingerprint_spec).where(ModelRecord.name == settings.model))
    return registered or DEFAULT_FINGERPRINT_SPEC


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_import(file: str, source: str | None = None, workers: int | None = None, progress: bool = True) -> int:
    """Import ``file`` into ``MSVAE_DATABASE_URL`` (migrating it first) with ``workers`` processes (default: one
    per core) and a progress bar on stderr; print the counts and every rejected record. Running it again after an
    interruption resumes where the last run stopped. Returns the exit status: 0, 1 when the file cannot be read
    at all, 130 when interrupted (Ctrl-C, SIGINT, SIGTERM)."""
    settings = Settings()
    path = Path(file)
    if not path.is_file():
        print(f"msvae candidates import: {file}: no such file", file=sys.stderr)
        return 1
    upgrade_database(settings.database_url)
    database = Database(settings.database_url)
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

        with database.session() as session:
            spec = _fingerprint_spec(session, settings)
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
