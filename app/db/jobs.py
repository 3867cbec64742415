"""Queries of the batch-job tables that make jobs survive a restart and let several servers share them.

Each accepted spectrum has a ``job_spectra`` row that moves from ``pending`` to ``done`` or ``failed`` exactly
once (a conditional UPDATE), so a worker restarted mid-job picks up only the pending rows. Before annotating, a
worker claims pending rows (:func:`claim_spectra`: one UPDATE whose row choice is locked with ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; SQLite runs one writer at a time, so the statement is atomic there as it stands), so two
servers on one database never annotate the same spectrum; the claim of a worker that died expires after a lease.
Callers commit; committing after each recorded chunk makes the progress durable.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
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


def open_jobs(session: Session, limit: int = 16) -> list[str]:
    """The ids of the jobs a worker may work on, in the order to try them: interrupted or shared (``running``) ones
    first, then the queued ones, oldest first."""
    running_first = case((Job.status == "running", 0), else_=1)
    query = (
        select(Job.id).where(Job.status.in_(("running", "queued"))).order_by(running_first, Job.created_at).limit(limit)
    )
    return list(session.scalars(query))


def start_job(session: Session, job: Job) -> None:
    """Mark ``job`` running (keeping the first start time when it is resumed)."""
    job.status = "running"
    if job.started_at is None:
        job.started_at = utcnow()
    session.flush()


def claim_spectra(session: Session, job_id: str, worker: str, n: int, lease_seconds: float) -> list[int]:
    """Claim up to ``n`` pending spectra of ``job_id`` for ``worker`` (lowest indices first): those nobody claimed,
    or whose claim is older than ``lease_seconds``. Returns their indices, ascending. Run it in a transaction of
    its own and commit at once, so the claim is visible to the other workers."""
    now = utcnow()
    claimable = and_(
        JobSpectrum.job_id == job_id,
        JobSpectrum.status == "pending",
        or_(JobSpectrum.claimed_at.is_(None), JobSpectrum.claimed_at < now - timedelta(seconds=lease_seconds)),
    )
    # PostgreSQL: the chosen rows stay locked until the caller commits, and rows another claim has locked are
    # passed over. SQLite has no row locks; the claimable condition is checked again by the UPDATE, which SQLite
    # runs alone, so a row another worker took in between is left out.
    chosen = session.scalars(
        select(JobSpectrum.id)
        .where(claimable)
        .order_by(JobSpectrum.spectrum_index)
        .limit(n)
        .with_for_update(skip_locked=True)
    ).all()
    if not chosen:
        return []
    claimed = session.scalars(
        update(JobSpectrum)
        .where(JobSpectrum.id.in_(chosen), claimable)
        .values(claimed_by=worker, claimed_at=now)
        .returning(JobSpectrum.spectrum_index)
    )
    return sorted(claimed)


def count_pending(session: Session, job_id: str) -> int:
    """Spectra of ``job_id`` not yet annotated (claimed or not)."""
    query = select(func.count()).where(JobSpectrum.job_id == job_id, JobSpectrum.status == "pending")
    return session.scalar(query) or 0


def record_spectrum(
    session: Session,
    job_id: str,
    spectrum_index: int,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    worker: str | None = None,
) -> bool:
    """Store the result (or the error) of one spectrum and advance the job's counters; with ``worker``, only while
    that worker holds the spectrum's claim.

    Returns False, changing nothing, when that spectrum was already recorded (or is claimed by another worker).
    """
    failed = error is not None
    conditions = [
        JobSpectrum.job_id == job_id,
        JobSpectrum.spectrum_index == spectrum_index,
        JobSpectrum.status == "pending",
    ]
    if worker is not None:
        conditions.append(JobSpectrum.claimed_by == worker)
    claimed = session.execute(
        update(JobSpectrum)
        .where(*conditions)
        .values(status="failed" if failed else "done", result=result, error=error, finished_at=utcnow())
    ).rowcount
    if not claimed:
        return False
    session.execute(
        update(Job).where(Job.id == job_id).values(n_done=Job.n_done + 1, n_failed=Job.n_failed + int(failed))
    )
    return True


def finish_job(session: Session, job_id: str, error: str | None = None) -> bool:
    """Close a running job: ``done``, or ``failed`` with ``error`` (a failure of the whole job, not of a spectrum).
    Returns False when it was not running (another worker closed it first)."""
    closed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running")
        .values(status="failed" if error is not None else "done", error=error, finished_at=utcnow())
    ).rowcount
    return bool(closed)
