"""``msvae candidates import FILE [--source NAME]``."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.candidates.importer import import_candidates
from app.candidates.readers import CandidateFileError
from app.db import Database, ModelRecord
from app.settings import Settings
from migrations import upgrade_database
from models.featurize.fingerprints import DEFAULT_FINGERPRINT_SPEC


def _fingerprint_spec(session: Session, settings: Settings) -> str:
    """The spec of the model the service serves, when it is registered; else the default spec."""
    registered = session.scalar(select(ModelRecord.fingerprint_spec).where(ModelRecord.name == settings.model))
    return registered or DEFAULT_FINGERPRINT_SPEC


def run_import(file: str, source: str | None = None) -> int:
    """Import ``file`` into ``MSVAE_DATABASE_URL`` (migrating it first); print the counts and every rejected
    record. Returns the exit status: 0, or 1 when the file cannot be read at all."""
    settings = Settings()
    path = Path(file)
    if not path.is_file():
        print(f"msvae candidates import: {file}: no such file", file=sys.stderr)
        return 1
    upgrade_database(settings.database_url)
    database = Database(settings.database_url)
    try:
        with database.session() as session:
            spec = _fingerprint_spec(session, settings)
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
