"""``POST /v1/annotate``: rank candidate structures for each spectrum of an MGF upload or a JSON body."""

from __future__ import annotations

import io
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

from app.api.deps import ServedModelDep, ServiceDep, media_type, read_upload
from app.api.errors import RequestRejected, spectrum_label
from app.api.jsonbody import parse_json
from app.api.openapi import request_body
from app.api.schemas import AnnotateRequest, AnnotateResponse, ErrorResponse
from app.api.work import run_work
from app.scheduler import Budget
from app.service import by_index, rejection, split_spectra
from app.settings import Settings, setting_name
from models.featurize.mgf import InputTooLarge, Spectrum, read_spectra, read_spectra_from_json

router = APIRouter(tags=["annotation"])

TOP_K = Query(10, ge=1, le=1000, description="candidates returned per spectrum")
PPM = Query(10.0, ge=0, le=1000, description="precursor mass window for candidates from the database, ppm")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 408, 413, 415, 422, 503)
}
_JOBS_HINT = "; send larger batches to POST /v1/jobs"


def parse_mgf(data: bytes, settings: Settings, budget: Budget) -> tuple[list[Spectrum], list[dict[str, Any]]]:
    """(spectra, rejections) of an uploaded spectrum file (MGF, MSP, mzML or mzXML; plain or gzip), within the limits
    of a synchronous request; :class:`InputTooLarge` past them."""
    return split_spectra(read_spectra(io.BytesIO(data), limits=settings.read_limits(job=False, check=budget.check)))


def _given_candidates(item: Any, settings: Settings) -> list[str] | str | None:
    """The candidate SMILES given with one JSON spectrum (None: none given), or why they are refused."""
    candidates = item.get("candidates") if isinstance(item, dict) else None
    if candidates is None:
        return None
    if not (isinstance(candidates, list) and all(isinstance(s, str) for s in candidates)):
        return "candidates must be a list of SMILES strings"
    if len(candidates) > settings.max_candidates:
        limit = setting_name("max_candidates")
        return f"{len(candidates)} candidates; the limit is {settings.max_candidates} per spectrum ({limit})"
    too_long = next((i for i, s in enumerate(candidates) if len(s) > settings.max_smiles_length), None)
    if too_long is not None:
        limit = setting_name("max_smiles_length")
        return (
            f"candidate {too_long}: a SMILES of {len(candidates[too_long])} characters; the limit is "
            f"{settings.max_smiles_length} ({limit})"
        )
    return candidates


def parse_json_spectra(
    body: bytes, settings: Settings, budget: Budget
) -> tuple[list[Spectrum], list[dict[str, Any]], dict[int, list[str]]]:
    """(spectra, rejections, candidate SMILES by spectrum index) of a JSON ``{"spectra": [...]}`` body."""
    payload = parse_json(body, settings.max_json_depth)
    if not isinstance(payload, dict) or not isinstance(payload.get("spectra"), list):
        raise HTTPException(422, 'the JSON body must be an object {"spectra": [...]}')
    items = payload["spectra"]
    limits = settings.read_limits(job=False, check=budget.check)
    spectra, rejected = split_spectra(read_spectra_from_json(items, limits=limits))
    given: dict[int, list[str]] = {}
    kept = []
    for spectrum in spectra:
        candidates = _given_candidates(items[spectrum.index], settings)
        if isinstance(candidates, str):
            rejected.append(rejection(spectrum, candidates))
            continue
        if candidates is not None:
            given[spectrum.index] = candidates
        kept.append(spectrum)
    return kept, rejected, given


def nothing_usable(rejected: list[dict[str, Any]]) -> RequestRejected:
    """The 422 for a request none of whose spectra can be annotated, naming the first problems."""
    shown = "; ".join(spectrum_label(item) for item in rejected[:3])
    more = f" (and {len(rejected) - 3} more)" if len(rejected) > 3 else ""
    return RequestRejected(422, f"no spectrum could be annotated: {shown}{more}", rejected)


@router.post(
    "/v1/annotate",
    response_model=AnnotateResponse,
    responses=_ERRORS,
    openapi_extra=request_body(AnnotateRequest, "an MGF file (plain or gzip)"),
)
async def annotate_spectra(
    request: Request,
    service: ServiceDep,
    served: ServedModelDep,
    top_k: int = TOP_K,
    ppm: float = PPM,
) -> AnnotateResponse:
    """Rank candidate structures for each spectrum, best (lowest cross-entropy) first.

    Send a multipart field ``file`` (MGF) or JSON ``{"spectra": [{"title", "precursor_mz", "peaks",
    "candidates"}]}``. Spectra without given candidates take those of the candidate database within ``ppm`` of
    their neutral mass (from PEPMASS and ADDUCT, ``[M+H]+`` by default). Spectra that cannot be annotated are
    listed under ``rejected`` with the reason; when none can, the answer is 422. Every limit of the request
    (``MSVAE_MAX_*``, ``MSVAE_REQUEST_TIMEOUT_SECONDS``) is named in the answer that refuses it.
    """
    settings = service.settings
    kind = media_type(request)
    if kind == "multipart/form-data":
        data, _ = await read_upload(request)
    elif kind == "application/json":
        body = await request.body()
    else:
        raise HTTPException(415, "send an MGF file as multipart field 'file', or JSON {\"spectra\": [...]}")

    def work(budget: Budget) -> AnnotateResponse:
        given: dict[int, list[str]] = {}
        try:
            if kind == "multipart/form-data":
                spectra, rejected = parse_mgf(data, settings, budget)
            else:
                spectra, rejected, given = parse_json_spectra(body, settings, budget)
        except InputTooLarge as exc:
            hint = _JOBS_HINT if exc.limit == "max_spectra" else ""
            raise InputTooLarge(f"{exc}{hint}", exc.limit) from None
        results: list[dict[str, Any]] = []
        if spectra:
            results, failed = service.annotate(
                spectra, top_k=top_k, ppm=ppm, given=given, model=served, check=budget.check
            )
            rejected = sorted(rejected + failed, key=by_index)
        if not results:
            raise nothing_usable(rejected)
        return AnnotateResponse.model_validate({"model": served.name, "results": results, "rejected": rejected})

    return await run_work(request, work)
