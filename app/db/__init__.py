"""The database layer: ORM tables, engines and sessions. Migrations live in the top-level ``migrations``
package (``msvae db upgrade``)."""

from app.db.base import Base, utcnow
from app.db.engine import Database, make_engine, normalize_database_url
from app.db.tables import JOB_STATUSES, SPECTRUM_STATUSES, Candidate, CandidateImport, Job, JobSpectrum

__all__ = [
    "JOB_STATUSES",
    "SPECTRUM_STATUSES",
    "Base",
    "Candidate",
    "CandidateImport",
    "Database",
    "Job",
    "JobSpectrum",
    "make_engine",
    "normalize_database_url",
    "utcnow",
]
