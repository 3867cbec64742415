"""Queries of the batch-job tables that make jobs survive a restart.

Each accepted spectrum has a ``job_spectra`` row that moves from ``pending`` to ``done`` or ``failed`` exactly
once (a conditional UPDATE), so a worker restarted mid-job picks up only the pending rows, and two workers
racing on one spectrum store one result. Callers commit; committing after each recorded spectrum makes the
progress durable.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.tables import Job, JobSpectrum


def create_job(
    session: Session,
    *,
    mgf: bytes,
    model: str,
    top_k: int,
    ppm: float,
    spectra: Iterable[tuple[int, str | None]],
    rejected: list[dict[str, Any]] | None = None,
    input_name: str | None = None,
) -> Job:
    """Queue a job over ``mgf``; ``spectra`` are the accepted (index, title) pairs, ``rejected`` the
    spectra refused at submission (``{"index", "title", "reason"}``)."""
    job = Job(
        model=model,
        top_k=top_k,
        ppm=ppm,
        input_mgf=mgf,
        input_name=input_name,
        rejected=list(rejected or []),
        spectra=[JobSpectrum(spectrum_index=index, title=title) for index, title in spectra],
    )
    job.n_spectra = len(job.spectra)
    session.add(job)
    session.flush()
    return job


def next_job(session: Session) -> Job | None:
    """The job a worker should work on: an interrupted (``running``) one first, else the oldest queued."""
    interrupted_first = case((Job.status == "running", 0), else_=1)
    query = (
        select(Job).where(Job.status.in_(("running", "queued"))).order_by(interrupted_first, Job.created_at).limit(1)
    )
    return session.scalars(query).first()


def start_job(session: Session, job: Job) -> None:
    """Mark ``job`` running (keeping the first start time when it is resumed)."""
    job.status = "running"
    if job.started_at is None:
        job.started_at = utcnow()
    session.flush()


def pending_spectra(session: Session, job_id: str) -> list[JobSpectrum]:
    """The spectra of ``job_id`` not yet annotated, in file order."""
    query = (
        select(JobSpectrum)
        .where(JobSpectrum.job_id == job_id, JobSpectrum.status == "pending")
        .order_by(JobSpectrum.spectrum_index)
    )
    return list(session.scalars(query))


def record_spectrum(
    session: Session,
    job_id: str,
    spectrum_index: int,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """Store the result (or the error) of one spectrum and advance the job's counters.

    Returns False, changing nothing, when that spectrum was already recorded.
    """
    failed = error is not None
    claimed = session.execute(
        update(JobSpectrum)
        .where(
            JobSpectrum.job_id == job_id,
            JobSpectrum.spectrum_index == spectrum_index,
            JobSpectrum.status == "pending",
        )
        .values(status="failed" if failed else "done", result=result, error=error, finished_at=utcnow())
    ).rowcount
    if not claimed:
        return False
    session.execute(
        update(Job).where(Job.id == job_id).values(n_done=Job.n_done + 1, n_failed=Job.n_failed + int(failed))
    )
    return True


def finish_job(session: Session, job: Job, error: str | None = None) -> None:
    """Close ``job``: ``done``, or ``failed`` with ``error`` (a failure of the whole job, not of a spectrum)."""
    job.status = "failed" if error is not None else "done"
    job.error = error
    job.finished_at = utcnow()
    session.flush()
