"""Request and response bodies of the HTTP API (DESIGN.md), as pydantic models; they make the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    model: str = Field(description="name of the served model")
    device: str = Field(description="where the model runs: 'cpu' or 'cuda:0'")
    candidates: int = Field(description="molecules in the candidate database (in memory)")


class ModelInfo(BaseModel):
    name: str
    network: str = Field(description="registry name of the network (svae, vaevae, ..., or mlp)")
    fingerprint_spec: str
    n_bits: int
    binning: dict[str, Any]
    device: str
    card: dict[str, Any] = Field(description="the model card: data, split, supervision level, epochs, metrics")


class ModelList(BaseModel):
    models: list[ModelInfo]


class SpectrumIn(BaseModel):
    """One query spectrum in JSON. Further scalar keys (``adduct``, ``charge``, ``smiles``) are read as MGF headers."""

    model_config = {"extra": "allow"}

    title: str = ""
    precursor_mz: float | None = Field(default=None, description="precursor m/z (PEPMASS)")
    peaks: list[list[float]] = Field(description="[[m/z, intensity], ...]")
    adduct: str | None = Field(default=None, description="precursor ion type, [M+H]+ when absent")
    candidates: list[str] | None = Field(
        default=None, description="candidate SMILES; when absent, the database by precursor mass"
    )


class AnnotateRequest(BaseModel):
    spectra: list[SpectrumIn]


class Rejection(BaseModel):
    """A spectrum (or a stretch of input) that was not annotated, and why."""

    index: int | None = Field(description="0-based position of the spectrum in the request")
    title: str | None = None
    line: int | None = Field(default=None, description="1-based line in the uploaded file")
    reason: str


class RankedCandidate(BaseModel):
    rank: int
    smiles: str
    inchikey: str
    formula: str
    score: float = Field(description="cross-entropy of predicted fingerprint vs the candidate's bits (lower = better)")


class SpectrumResult(BaseModel):
    model_config = {"extra": "allow"}

    index: int = Field(description="0-based position of the spectrum in the request")
    title: str
    precursor_mz: float | None
    n_candidates: int
    candidates: list[RankedCandidate]
    note: str | None = Field(
        default=None, description="why no candidate was ranked (none in the database's mass window) and what to do"
    )


class AnnotateResponse(BaseModel):
    model: str
    results: list[SpectrumResult]
    rejected: list[Rejection] = Field(default_factory=list, description="spectra that were not annotated, and why")


class ErrorResponse(BaseModel):
    detail: Any
    rejected: list[Rejection] | None = None


class CandidateImportRejection(BaseModel):
    line: int | None = Field(description="1-based line of the file (of the list, for JSON)")
    record: int | None = Field(default=None, description="SDF record (1-based) or MGF spectrum (0-based)")
    reason: str


class CandidateImportReport(BaseModel):
    format: str
    added: int
    duplicate: int
    rejected: list[CandidateImportRejection]
    total: int = Field(description="molecules in the candidate database afterwards")


class CandidateImportJSON(BaseModel):
    smiles: list[str] = Field(description="SMILES, one molecule each")
    names: list[str | None] | None = Field(default=None, description="optional names, one per SMILES")
    source: str | None = None


class CandidateOut(BaseModel):
    id: int
    inchikey: str
    smiles: str
    name: str | None
    formula: str
    monoisotopic_mass: float
    source: str | None


class CandidateList(BaseModel):
    count: int
    candidates: list[CandidateOut]


class JobCreated(BaseModel):
    id: str
    status: str
    n_spectra: int = Field(description="accepted spectra, each annotated once")
    rejected: list[Rejection] = Field(default_factory=list, description="spectra refused at submission")


class JobStatus(BaseModel):
    id: str
    status: str = Field(description="queued, running, done or failed")
    model: str
    top_k: int
    ppm: float
    n_spectra: int
    n_done: int
    n_failed: int
    progress: float = Field(description="fraction of the accepted spectra processed, 0 to 1")
    rejected: list[Rejection]
    error: str | None
    input_name: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobResults(AnnotateResponse):
    id: str
    status: str
