"""Batch jobs: ``POST /v1/jobs`` (MGF upload, queued and persisted), ``GET /v1/jobs/{id}`` (status, progress) and
``GET /v1/jobs/{id}/results``. The job worker (``app.worker``) annotates the queued spectra in the background."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from app.annotation import spectrum_neutral_mass
from app.api.annotate import MODEL, PPM, TOP_K, nothing_usable, parse_mgf
from app.api.deps import ServiceDep, media_type, read_upload
from app.api.openapi import request_body
from app.api.schemas import ErrorResponse, JobCreated, JobResults, JobStatus
from app.api.security import require_api_key
from app.db import Job, JobSpectrum
from app.db.jobs import create_job
from app.service import ModelNotServed, Service
from models.featurize.mgf import SpectrumError

router = APIRouter(tags=["jobs"])
JOB_ID = Path(description="the id returned by POST /v1/jobs", max_length=36)


def _submit(service: Service, data: bytes, filename: str | None, model: str, top_k: int, ppm: float) -> JobCreated:
    """Check every spectrum now (so refusals are known at once), store the MGF and the accepted spectra."""
    spectra, rejected = parse_mgf(data)
    accepted = []
    for spectrum in spectra:
        try:
            spectrum_neutral_mass(spectrum)  # an unknown ADDUCT is refused now, not mid-job
        except SpectrumError as exc:
            rejected.append(exc.to_dict())
            continue
        accepted.append((spectrum.index, spectrum.title))
    rejected.sort(key=lambda r: (r["index"] is None, r["index"] or 0))
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
    responses={code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 415, 422)},
    dependencies=[Depends(require_api_key)],
    openapi_extra=request_body(None, "an MGF file (plain or gzip)"),
)
async def submit_job(
    request: Request,
    service: ServiceDep,
    top_k: int = TOP_K,
    ppm: float = PPM,
    model: str | None = MODEL,
) -> JobCreated:
    """Queue a batch annotation of an uploaded MGF; returns the job id at once. Spectra that cannot be read are
    listed under ``rejected`` and are not part of the job."""
    try:
        served = service.model_for(model)
    except ModelNotServed as exc:
        raise HTTPException(404, str(exc)) from None
    if media_type(request) != "multipart/form-data":
        raise HTTPException(415, "upload the MGF file as multipart field 'file'")
    data, filename = await read_upload(request)
    created = await run_in_threadpool(_submit, service, data, filename, served.name, top_k, ppm)
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
) -> dict[str, Any]:
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
                rejected.append({"index": row.spectrum_index, "title": row.title, "line": None, "reason": row.error})
        rejected.sort(key=lambda r: (r["index"] is None, r["index"] or 0))
        return {"id": job.id, "status": job.status, "model": job.model, "results": results, "rejected": rejected}
