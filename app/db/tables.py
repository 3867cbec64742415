"""The ORM tables: candidate molecules, registered models, batch jobs and their spectra.

Changing a table here needs a new revision in ``migrations/versions`` (tests compare the two).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, UTCDateTime, utcnow

JOB_STATUSES = ("queued", "running", "done", "failed")
SPECTRUM_STATUSES = ("pending", "done", "failed")


class Candidate(Base):
    """One molecule of the candidate database, with its fingerprint packed (``np.packbits`` order)."""

    __tablename__ = "candidates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inchikey: Mapped[str] = mapped_column(String(27), unique=True)
    inchikey_block: Mapped[str] = mapped_column(String(14), index=True)
    smiles: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    formula: Mapped[str] = mapped_column(Text, index=True)
    monoisotopic_mass: Mapped[float] = mapped_column(Double, index=True)
    fingerprint_spec: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CandidateImport(Base):
    """Where an unfinished ``candidates import`` of one input stopped, so running it again resumes there.

    ``key`` identifies the input by content and fingerprint spec (sha256); ``entries_done`` counts the input's
    records already featurized and committed (in order). The row is deleted when the import finishes.
    """

    __tablename__ = "candidate_imports"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    entries_done: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def _new_job_id() -> str:
    return str(uuid.uuid4())


class Job(Base):
    """A batch annotation job: the uploaded MGF, its parameters and its progress."""

    __tablename__ = "jobs"
    __table_args__ = (CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_new_job_id)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    model: Mapped[str] = mapped_column(Text)
    top_k: Mapped[int] = mapped_column(Integer)
    ppm: Mapped[float] = mapped_column(Double)
    n_spectra: Mapped[int] = mapped_column(Integer, default=0)
    n_done: Mapped[int] = mapped_column(Integer, default=0)
    n_failed: Mapped[int] = mapped_column(Integer, default=0)
    # Spectra refused at submission ([{"index", "title", "reason"}]); they get no job_spectra row.
    rejected: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    input_name: Mapped[str | None] = mapped_column(Text)
    input_mgf: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    spectra: Mapped[list[JobSpectrum]] = relationship(
        back_populates="job", cascade="all, delete-orphan", passive_deletes=True, order_by="JobSpectrum.spectrum_index"
    )


class JobSpectrum(Base):
    """One accepted spectrum of a job; the unique (job, index) pair makes each annotation happen once."""

    __tablename__ = "job_spectra"
    __table_args__ = (
        UniqueConstraint("job_id", "spectrum_index"),
        CheckConstraint("status IN ('pending', 'done', 'failed')", name="status"),
        Index("ix_job_spectra_job_id_status", "job_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("jobs.id", ondelete="CASCADE"))
    # Position of the spectrum in the uploaded MGF (as read_spectra numbers them).
    spectrum_index: Mapped[int] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The worker annotating a pending spectrum claims it first (app.db.jobs.claim_spectra); a claim older than the
    # lease is free again (its worker died), so no spectrum is annotated by two workers at once.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    job: Mapped[Job] = relationship(back_populates="spectra")
