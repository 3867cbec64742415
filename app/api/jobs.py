"""Batch jobs: ``POST /v1/jobs`` (MGF upload, queued and persisted), ``GET /v1/jobs/{id}`` (status, progress) and
``GET /v1/jobs/{id}/results``. The job worker (``app.worker``) annotates the queued spectra in the background."""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from sqlalchemy import select

from app.annotation import spectrum_neutral_mass
from app.api.annotate import PPM, TOP_K, nothing_usable
from app.api.deps import ServedModelDep, ServiceDep, media_type, read_upload
from app.api.openapi import request_body
from app.api.schemas import ErrorResponse, JobCreated, JobResults, JobStatus
from app.api.security import require_api_key
from app.api.work import run_work
from app.db import Job, JobSpectrum
from app.db.jobs import create_job
from app.scheduler import Budget
from app.service import Service, by_index
from models.featurize.mgf import SpectrumError, read_spectra

router = APIRouter(tags=["jobs"])
JOB_ID = Path(description="the id returned by POST /v1/jobs", max_length=36)


def _submit(
    service: Service, budget: Budget, data: bytes, filename: str | None, model: str, top_k: int, ppm: float
) -> JobCreated:
    """Check every spectrum now (so refusals are known at once), store the input and the accepted spectra. The
    spectra are read one at a time and only their index and title kept, so a large job costs little memory."""
    limits = service.settings.read_limits(job=True, check=budget.check)
    accepted, rejected = [], []
    for item in read_spectra(io.BytesIO(data), limits=limits):
        try:
            if isinstance(item, SpectrumError):
                raise item
            spectrum_neutral_mass(item)  # an unknown ADDUCT is refused now, not mid-job
        except SpectrumError as exc:
            rejected.append(exc.to_dict())
            continue
        accepted.append((item.index, item.title))
    rejected.sort(key=by_index)
    if not accepted:
        raise nothing_usable(rejected)
    with service.database.session() as session:
        job = create_job(
            session, mgf=data, model=model, top_k=top_k, ppm=ppm, spectra=accepted, rejected=rejected,
            input_name=filename,
        )  # fmt: skip
        return JobCreated(id=job.id, status=job.status, n_spectra=job.n_spectra, rejected=rejected)


@router.post(
    "/v1/jobs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses={code: {"model": ErrorResponse} for code in (400, 401, 404, 408, 413, 415, 422, 503)},
    dependencies=[Depends(require_api_key)],
    openapi_extra=request_body(None, "an MGF file (plain or gzip)"),
)
async def submit_job(
    request: Request,
    service: ServiceDep,
    served: ServedModelDep,
    top_k: int = TOP_K,
    ppm: float = PPM,
) -> JobCreated:
    """Queue a batch annotation of an uploaded MGF; returns the job id at once. Spectra that cannot be read are
    listed under ``rejected`` and are not part of the job."""
    if media_type(request) != "multipart/form-data":
        raise HTTPException(415, "upload the MGF file as multipart field 'file'")
    data, filename = await read_upload(request)

    def submit(budget: Budget) -> JobCreated:
        return _submit(service, budget, data, filename, served.name, top_k, ppm)

    created = await run_work(request, submit)
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.wake()
    return created


def _job(session: Any, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return job


@router.get("/v1/jobs/{job_id}", response_model=JobStatus, responses={404: {"model": ErrorResponse}})
def job_status(service: ServiceDep, job_id: str = JOB_ID) -> JobStatus:
    """Status and progress of a job."""
    with service.database.session() as session:
        job = _job(session, job_id)
        return JobStatus(
            id=job.id, status=job.status, model=job.model, top_k=job.top_k, ppm=job.ppm, n_spectra=job.n_spectra,
            n_done=job.n_done, n_failed=job.n_failed, progress=job.n_done / job.n_spectra if job.n_spectra else 1.0,
            rejected=job.rejected, error=job.error, input_name=job.input_name, created_at=job.created_at,
            started_at=job.started_at, finished_at=job.finished_at,
        )  # fmt: skip


@router.get("/v1/jobs/{job_id}/results", response_model=JobResults, responses={404: {"model": ErrorResponse}})
def job_results(
    service: ServiceDep,
    job_id: str = JOB_ID,
    offset: int = Query(0, ge=0, description="skip the first results (by spectrum index)"),
    limit: int | None = Query(None, ge=1, description="at most this many spectra"),
) -> JobResults:
    """The results so far, as in ``POST /v1/annotate``; spectra refused at submission or failing in the worker
    are under ``rejected``."""
    with service.database.session() as session:
        job = _job(session, job_id)
        query = (
            select(JobSpectrum)
            .where(JobSpectrum.job_id == job_id, JobSpectrum.status != "pending")
            .order_by(JobSpectrum.spectrum_index)
            .offset(offset)
            .limit(limit)
        )
        results, rejected = [], list(job.rejected)
        for row in session.scalars(query):
            if row.status == "done":
                results.append({"index": row.spectrum_index, **(row.result or {})})
            else:
                rejected.append(SpectrumError(row.error or "", index=row.spectrum_index, title=row.title).to_dict())
        rejected.sort(key=by_index)
        return JobResults.model_validate(
            {"id": job.id, "status": job.status, "model": job.model, "results": results, "rejected": rejected}
        )
