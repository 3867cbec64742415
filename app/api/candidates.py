"""``POST /v1/candidates`` (import, API key) and ``GET /v1/candidates`` (look-up by mass window or formula)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import ValidationError

from app.api.deps import ServiceDep, media_type, read_upload
from app.api.jsonbody import parse_json
from app.api.openapi import request_body
from app.api.schemas import CandidateImportJSON, CandidateImportReport, CandidateList, CandidateOut, ErrorResponse
from app.api.security import require_api_key
from app.api.work import run_work
from app.candidates.importer import import_candidates
from app.candidates.readers import FORMATS, CandidateFileError
from app.candidates.store import candidates_in_mass_window, candidates_with_formula
from app.scheduler import Budget
from app.settings import setting_name

router = APIRouter(tags=["candidates"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 408, 413, 415, 422, 503)
}


def _smiles_text(body: CandidateImportJSON, max_length: int) -> tuple[str, list[dict[str, Any]]]:
    """The JSON list as a SMILES file, a header line then one line per item (item i on line i + 2), and the items
    refused before import (empty, with whitespace inside: a line holds "SMILES [name]", or longer than
    ``max_length``)."""
    names = body.names or []
    if names and len(names) != len(body.smiles):
        raise HTTPException(422, f"{len(names)} names for {len(body.smiles)} SMILES")
    lines, refused = ["smiles name"], []
    for i, smiles in enumerate(body.smiles):
        text = smiles.strip()
        reason = None
        if not text or any(c.isspace() for c in text):
            reason = f"{smiles[:60]!r} is not one SMILES"
        elif len(text) > max_length:
            reason = (
                f"a SMILES of {len(text)} characters; the limit is {max_length} ({setting_name('max_smiles_length')})"
            )
        if reason is not None:
            refused.append({"line": i + 1, "record": None, "reason": reason})
            lines.append("#")  # a comment keeps the line numbers of the items after it
            continue
        name = " ".join((names[i] or "").split()) if names else ""
        lines.append(f"{text} {name}".rstrip())
    return "\n".join(lines) + "\n", refused


_FORMATS = Literal["smiles", "tsv", "sdf", "mgf"]
assert set(_FORMATS.__args__) == set(FORMATS), "the formats of the readers changed"


@router.post(
    "/v1/candidates",
    response_model=CandidateImportReport,
    responses=_ERRORS,
    dependencies=[Depends(require_api_key)],
    openapi_extra=request_body(CandidateImportJSON, "SMILES list, TSV/CSV with a smiles column, SDF, or MGF"),
)
async def import_molecules(
    request: Request,
    service: ServiceDep,
    source: str | None = Query(None, max_length=200, description="where the molecules come from"),
    format: Annotated[_FORMATS | None, Query(description="the file format; default: guessed")] = None,
) -> CandidateImportReport:
    """Add molecules to the candidate database (InChIKey de-duplicated; rejected rows with line numbers).

    Upload a file as multipart field ``file``, or send JSON ``{"smiles": [...], "names": [...], "source"}``.
    """
    kind = media_type(request)
    if kind == "multipart/form-data":
        data, filename = await read_upload(request)
    elif kind == "application/json":
        data, filename = await request.body(), None
    else:
        raise HTTPException(415, "send a file as multipart field 'file', or JSON {\"smiles\": [...]}")
    settings = service.settings

    def run(_: Budget) -> CandidateImportReport:
        refused: list[dict[str, Any]] = []
        first_line = 1  # line of the first record: rejections are reported relative to it (JSON: list position)
        content: str | bytes = data
        file_format, name = format, source or filename
        if kind == "application/json":
            try:
                body = CandidateImportJSON.model_validate(parse_json(data, settings.max_json_depth))
            except ValidationError as exc:
                raise HTTPException(422, f'the JSON body must be {{"smiles": [SMILES, ...]}}: {exc}') from None
            if not body.smiles:
                raise HTTPException(422, "the list of SMILES is empty")
            content, refused = _smiles_text(body, settings.max_smiles_length)
            file_format, first_line, name = "smiles", 2, source or body.source
        with service.database.session() as session:
            report = import_candidates(
                session, content, file_format, filename=filename, source=name, spec=service.model.fingerprint_spec
            )
        service.refresh_candidates()
        out = report.to_dict()
        for item in out["rejected"]:
            if item["line"] is not None:
                item["line"] -= first_line - 1
        out["rejected"] = sorted(refused + out["rejected"], key=lambda r: (r["line"] is None, r["line"] or 0))
        return CandidateImportReport.model_validate({**out, "total": len(service.store)})

    try:
        # The import cannot stop part-way (it commits as it goes), so it takes a heavy slot from the start.
        return await run_work(request, run, heavy=True)
    except CandidateFileError as exc:
        raise HTTPException(422, str(exc)) from None


def _out(candidate: Any) -> CandidateOut:
    return CandidateOut.model_validate(candidate, from_attributes=True)


@router.get("/v1/candidates", response_model=CandidateList, responses={422: {"model": ErrorResponse}})
def find_molecules(
    service: ServiceDep,
    mass: float | None = Query(None, gt=0, le=100_000, description="neutral monoisotopic mass"),
    ppm: float = Query(10.0, ge=0, le=1000),
    formula: str | None = Query(None, min_length=1, max_length=200, description="molecular formula, e.g. C6H12O6"),
    limit: int = Query(100, ge=1, le=10_000),
) -> CandidateList:
    """Molecules of the candidate database within ``ppm`` of ``mass``, or of formula ``formula``, by mass."""
    if (mass is None) == (formula is None):
        raise HTTPException(422, "give exactly one of mass (with ppm) or formula")
    with service.database.session() as session:
        if mass is not None:
            rows = candidates_in_mass_window(session, mass, ppm, limit=limit)
        else:
            rows = candidates_with_formula(session, formula or "", limit=limit)
        found = [_out(row) for row in rows]
    return CandidateList(count=len(found), candidates=found)
