"""``POST /v1/annotate``: rank candidate structures for each spectrum of an MGF upload or a JSON body."""

from __future__ import annotations

import io
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from app.api.deps import ServiceDep, media_type, read_upload
from app.api.errors import RequestRejected, spectrum_label
from app.api.openapi import request_body
from app.api.schemas import AnnotateRequest, AnnotateResponse, ErrorResponse
from app.service import ModelNotServed, split_spectra
from models.featurize.mgf import Spectrum, read_spectra, read_spectra_from_json

router = APIRouter(tags=["annotation"])

TOP_K = Query(10, ge=1, le=1000, description="candidates returned per spectrum")
PPM = Query(10.0, ge=0, le=1000, description="precursor mass window for candidates from the database, ppm")
MODEL = Query(None, max_length=255, description="model name (default: the served model)")
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 415, 422)}


def parse_mgf(data: bytes) -> tuple[list[Spectrum], list[dict[str, Any]]]:
    """(spectra, rejections) of an uploaded spectrum file: MGF, MSP, mzML or mzXML, plain or gzip."""
    return split_spectra(read_spectra(io.BytesIO(data)))


def parse_json_spectra(body: bytes) -> tuple[list[Spectrum], list[dict[str, Any]], dict[int, list[str]]]:
    """(spectra, rejections, candidate SMILES by spectrum index) of a JSON ``{"spectra": [...]}`` body."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("spectra"), list):
        raise HTTPException(422, 'the JSON body must be an object {"spectra": [...]}')
    items = payload["spectra"]
    spectra, rejected = split_spectra(read_spectra_from_json(items))
    given: dict[int, list[str]] = {}
    kept = []
    for spectrum in spectra:
        candidates = items[spectrum.index].get("candidates")
        if candidates is None:
            kept.append(spectrum)
        elif isinstance(candidates, list) and all(isinstance(s, str) for s in candidates):
            given[spectrum.index] = candidates
            kept.append(spectrum)
        else:
            rejected.append(
                {
                    "index": spectrum.index,
                    "title": spectrum.title,
                    "line": None,
                    "reason": "candidates must be a list of SMILES strings",
                }
            )
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
    top_k: int = TOP_K,
    ppm: float = PPM,
    model: str | None = MODEL,
) -> dict[str, Any]:
    """Rank candidate structures for each spectrum, best (lowest cross-entropy) first.

    Send a multipart field ``file`` (MGF) or JSON ``{"spectra": [{"title", "precursor_mz", "peaks",
    "candidates"}]}``. Spectra without given candidates take those of the candidate database within ``ppm`` of
    their neutral mass (from PEPMASS and ADDUCT, ``[M+H]+`` by default). Spectra that cannot be annotated are
    listed under ``rejected`` with the reason; when none can, the answer is 422.
    """
    try:
        served = service.model_for(model)
    except ModelNotServed as exc:
        raise HTTPException(404, str(exc)) from None
    kind = media_type(request)
    given: dict[int, list[str]] = {}
    if kind == "multipart/form-data":
        data, _ = await read_upload(request)
        spectra, rejected = await run_in_threadpool(parse_mgf, data)
    elif kind == "application/json":
        spectra, rejected, given = parse_json_spectra(await request.body())
    else:
        raise HTTPException(415, "send an MGF file as multipart field 'file', or JSON {\"spectra\": [...]}")
    if spectra:
        results, failed = await run_in_threadpool(
            service.annotate, spectra, top_k=top_k, ppm=ppm, given=given, model=served
        )
        rejected = sorted(rejected + failed, key=lambda r: (r["index"] is None, r["index"] or 0))
    else:
        results = []
    if not results:
        raise nothing_usable(rejected)
    return {"model": served.name, "results": results, "rejected": rejected}
