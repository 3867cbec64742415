"""Annotating MS/MS spectra with candidate structures: one implementation for the CLI and the HTTP API.

A model predicts each spectrum's fingerprint (one prediction batch for all spectra); each spectrum's candidates
are ranked by the cross-entropy between that prediction and their fingerprint bits (``models.retrieval``,
vectorized), lower first. Candidates come per spectrum from a caller's function: a CASMI-style directory of
``<TITLE>.tsv`` lists, a list of SMILES, or the candidate database by precursor mass.

A spectrum that cannot be annotated (no peak left after binning, an unknown adduct, no candidate file) gets a
result item with an ``error`` instead of failing the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.candidates.cache import CachedMolecule, FingerprintCache, featurize
from app.candidates.readers import CandidateFileError, open_entries
from models.featurize.adducts import DEFAULT_ADDUCT, neutral_mass
from models.featurize.fingerprints import (
    FingerprintSpec,
    InvalidMoleculeError,
    molecule_from_smiles,
    parse_fingerprint_spec,
)
from models.featurize.mgf import Spectrum, SpectrumError
from models.featurize.onbits import OnBits
from models.retrieval import RetrievalReport, best_first, candidate_scores, fingerprint_quality, rank_of_true
from models.spectra_model import SpectraModel

# (position or line, reason) of an input molecule that could not be used
Rejection = tuple[int, str]


@dataclass
class CandidateSet:
    """Candidate molecules of one query: identity columns and fingerprint bits, row i = one molecule.

    ``bits``: packed (N, ceil(n_bits / 8)) uint8 (``pack_bits``), unpacked (N, n_bits) 0/1, or the set positions
    (``OnBits``, as the candidate store holds them). The identity columns are lists, or views of the store's columns
    (``PackedStrings``, object arrays), so a window of thousands of candidates is not copied to rank ten.
    """

    smiles: Sequence[str]
    inchikeys: Sequence[str]
    formulas: Sequence[str]
    bits: np.ndarray | OnBits
    names: Sequence[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.smiles)

    @classmethod
    def empty(cls, spec: FingerprintSpec | str) -> CandidateSet:
        n_bytes = (parse_fingerprint_spec(spec).n_bits + 7) // 8
        return cls([], [], [], np.zeros((0, n_bytes), np.uint8))


def candidates_from_smiles(
    smiles: Sequence[str],
    spec: FingerprintSpec | str,
    names: Sequence[str | None] | None = None,
    check: Callable[[], None] | None = None,
    cache: FingerprintCache | None = None,
) -> tuple[CandidateSet, list[Rejection]]:
    """Candidates from SMILES (RDKit canonical SMILES, InChIKey, formula, fingerprint bits of ``spec``), from
    ``cache`` when given (which must be of ``spec``).

    Returns the set and the rejected inputs as (0-based position, reason); nothing is dropped silently. ``check``
    runs before each SMILES (it may raise to stop the work).
    """
    spec = parse_fingerprint_spec(spec)
    if cache is not None and cache.spec != spec:
        raise ValueError(f"a fingerprint cache of {cache.spec} cannot featurize {spec}")
    kept: list[tuple[int, CachedMolecule]] = []
    rejected = []
    for i, s in enumerate(smiles):
        if check is not None:
            check()
        try:
            kept.append((i, cache.molecule(s) if cache is not None else featurize(s, spec)))
        except InvalidMoleculeError as exc:
            rejected.append((i, str(exc)))
    return (
        CandidateSet(
            smiles=[m.smiles for _, m in kept],
            inchikeys=[m.inchikey for _, m in kept],
            formulas=[m.formula for _, m in kept],
            bits=OnBits.from_rows([m.on_bits for _, m in kept], spec.n_bits),
            names=[names[i] if names is not None else None for i, _ in kept],
        ),
        rejected,
    )


def candidates_from_tsv(path: str | Path, spec: FingerprintSpec | str) -> tuple[CandidateSet, list[Rejection]]:
    """Candidates from a CASMI-style table (tab separated, header row, a ``smiles`` column; ``name`` optional;
    an ``inchikey`` column may be present but the InChIKey is always computed from the SMILES).

    Returns the set and the rejected rows as (1-based line, reason). Raises :class:`CandidateFileError` naming the
    file when it is missing or unreadable as a whole (binary, no ``smiles`` column).
    """
    path = Path(path)
    if not path.is_file():
        raise CandidateFileError(f"{path}: no such candidate file")
    smiles, names, lines, rejected = [], [], [], []
    try:
        with open_entries(path, fmt="tsv") as (_, entries):
            for entry in entries:
                if entry.error is not None:
                    rejected.append((entry.line, f"{path.name} line {entry.line}: {entry.error}"))
                else:
                    smiles.append(entry.smiles)
                    names.append(entry.name)
                    lines.append(entry.line)
    except CandidateFileError as exc:
        raise CandidateFileError(f"{path}: {exc}") from None
    candidates, bad = candidates_from_smiles(smiles, spec, names)
    rejected += [(lines[i], f"{path.name} line {lines[i]}: {reason}") for i, reason in bad]
    return candidates, sorted(rejected, key=lambda r: r[0])


def candidates_from_store(store: Any, neutral_mass: float, ppm: float) -> CandidateSet:
    """The candidates of a :class:`~app.candidates.store.CandidateStore` (or one snapshot of it, a
    ``CandidateMatrix``) whose monoisotopic mass is within ``ppm`` of ``neutral_mass`` (every column a view of the
    store's: the fingerprints stay packed, and scoring unpacks them)."""
    matrix = getattr(store, "matrix", store)  # one consistent snapshot even while the store refreshes
    rows = matrix.mass_slice(neutral_mass, ppm)
    return CandidateSet(
        smiles=matrix.smiles[rows],
        inchikeys=matrix.inchikeys[rows],
        formulas=matrix.formulas[rows],
        bits=matrix.packed[rows],
    )


def spectrum_neutral_mass(spectrum: Spectrum) -> float:
    """The neutral monoisotopic mass of the spectrum's molecule from its precursor m/z and ``ADDUCT`` header
    (``[M+H]+`` when absent). Raises :class:`SpectrumError` naming the spectrum when that cannot be done."""
    if spectrum.precursor_mz is None:
        raise SpectrumError("no precursor m/z (PEPMASS)", index=spectrum.index, title=spectrum.title)
    adduct = spectrum.adduct or DEFAULT_ADDUCT
    try:
        return float(neutral_mass(spectrum.precursor_mz, adduct))
    except ValueError as exc:
        raise SpectrumError(str(exc), index=spectrum.index, title=spectrum.title) from None


def candidate_file(directory: str | Path, spectrum: Spectrum) -> Path:
    """``<directory>/<TITLE>.tsv``; a spectrum without TITLE, or with a TITLE that is not a plain file name, is a
    :class:`SpectrumError`."""
    title = spectrum.title
    if not title or title in (".", "..") or any(c in title for c in "/\\\x00"):
        raise SpectrumError(
            "a TITLE that is a plain file name is needed to find its candidate list <TITLE>.tsv",
            index=spectrum.index,
            title=title,
        )
    return Path(directory) / f"{title}.tsv"


def directory_candidates(
    directory: str | Path, spec: FingerprintSpec | str, rejected: list[str] | None = None
) -> Callable[[Spectrum], CandidateSet]:
    """``candidates_for`` reading ``<directory>/<TITLE>.tsv`` per spectrum; rejected rows are appended to
    ``rejected`` (messages naming file and line) when a list is given. A missing or unreadable file raises
    :class:`CandidateFileError` for that spectrum."""
    if not Path(directory).is_dir():
        raise CandidateFileError(f"{directory}: no such candidate directory")

    def candidates_for(spectrum: Spectrum) -> CandidateSet:
        candidates, bad = candidates_from_tsv(candidate_file(directory, spectrum), spec)
        if rejected is not None:
            rejected.extend(reason for _, reason in bad)
        return candidates

    return candidates_for


def store_candidates(store: Any, ppm: float) -> Callable[[Spectrum], CandidateSet]:
    """``candidates_for`` taking each spectrum's candidates from a candidate store by precursor mass."""

    def candidates_for(spectrum: Spectrum) -> CandidateSet:
        return candidates_from_store(store, spectrum_neutral_mass(spectrum), ppm)

    return candidates_for


def no_candidate_note(spectrum: Spectrum, ppm: float, n_molecules: int | None = None) -> str:
    """What to tell the user of a spectrum that found no candidate in the database's mass window, and what to do."""
    among = "" if n_molecules is None else f" among the {n_molecules} molecules"
    return (
        f"no candidate within {ppm:g} ppm of neutral mass {spectrum_neutral_mass(spectrum):.4f}{among} of the "
        "candidate database: import a library with `msvae candidates import FILE` (or POST /v1/candidates), "
        "widen ppm, or send the spectrum's candidates with it"
    )


def _error_item(spectrum: Spectrum, position: int, exc: Exception) -> dict[str, Any]:
    if not isinstance(exc, SpectrumError):
        exc = SpectrumError(str(exc), index=spectrum.index, title=spectrum.title)
    error = exc.to_dict()
    error["index"] = spectrum.index if spectrum.index is not None else position
    return {
        "title": spectrum.title,
        "precursor_mz": spectrum.precursor_mz,
        "n_candidates": 0,
        "candidates": [],
        "error": error,
    }


def _candidates_or_error(
    candidates_for: Callable[[Spectrum], CandidateSet], spectrum: Spectrum
) -> CandidateSet | Exception:
    try:
        return candidates_for(spectrum)
    except (SpectrumError, CandidateFileError, OSError, ValueError) as exc:
        return exc


def annotate(
    model: SpectraModel,
    spectra: Sequence[Spectrum],
    candidates_for: Callable[[Spectrum], CandidateSet],
    top_k: int | None = 10,
    check: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Rank each spectrum's candidates by cross-entropy against its predicted fingerprint (lower is better).

    One result item per spectrum, in input order (DESIGN.md annotate response): ``{"title", "precursor_mz",
    "n_candidates", "candidates": [{"rank", "smiles", "inchikey", "formula", "score"}]}`` with the best
    ``top_k`` candidates (all when None), scores ascending; ranks are 1-based and candidates with equal scores
    (e.g. stereoisomers) keep their input order. A spectrum that cannot be annotated (scores that are not all
    finite numbers included) gets ``"error": {"index", "title", "line", "reason"}`` and no candidates. ``check``
    runs before each spectrum is ranked (it may raise to stop the work).
    """
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    prediction = model.predict(spectra)
    results = []
    for i, spectrum in enumerate(spectra):
        if check is not None:
            check()
        if not prediction.ok(i):
            results.append(_error_item(spectrum, i, prediction.errors[i]))
            continue
        candidates = _candidates_or_error(candidates_for, spectrum)
        if isinstance(candidates, Exception):
            results.append(_error_item(spectrum, i, candidates))
            continue
        item = {"title": spectrum.title, "precursor_mz": spectrum.precursor_mz, "n_candidates": len(candidates)}
        ranked = []
        if len(candidates):
            scores = np.asarray(candidate_scores(prediction.probs[i], candidates.bits), dtype=np.float64)
            if not np.isfinite(scores).all():  # JSON has no NaN or infinity, and a ranking of them means nothing
                results.append(_error_item(spectrum, i, ValueError("the model gave no finite score for it")))
                continue
            order = best_first(scores, top_k)
            ranked = [
                {
                    "rank": r + 1,
                    "smiles": candidates.smiles[j],
                    "inchikey": candidates.inchikeys[j],
                    "formula": candidates.formulas[j],
                    "score": float(scores[j]),
                }
                for r, j in enumerate(order)
            ]
        item["candidates"] = ranked
        results.append(item)
    return results


def true_inchikey_block(spectrum: Spectrum) -> str | None:
    """The first InChIKey block of the spectrum's known structure: its ``INCHIKEY`` header, else computed from its
    ``SMILES`` header; None when it has neither (or the SMILES is invalid)."""
    if spectrum.inchikey and len(spectrum.inchikey.strip()) >= 14:
        return spectrum.inchikey.strip()[:14].upper()
    if spectrum.smiles:
        try:
            return molecule_from_smiles(spectrum.smiles, None).inchikey[:14]
        except InvalidMoleculeError:
            return None
    return None


@dataclass
class RetrievalEvaluation:
    """What :func:`evaluate_retrieval` finds: the report over the ranked queries, one record per query, and the
    spectra left out (no known structure, true structure not among the candidates, or an error)."""

    report: RetrievalReport
    queries: list[dict[str, Any]]
    skipped: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for s in self.skipped:
            reasons[s["why"]] = reasons.get(s["why"], 0) + 1
        return {
            **self.report.to_dict(),
            "n_skipped": len(self.skipped),
            "skipped_by_reason": reasons,
            "queries": self.queries,
            "skipped": self.skipped,
        }


def evaluate_retrieval(
    model: SpectraModel, spectra: Sequence[Spectrum], candidates_for: Callable[[Spectrum], CandidateSet]
) -> RetrievalEvaluation:
    """Rank the true structure of each spectrum whose header names it (``INCHIKEY=`` or ``SMILES=``) among its
    candidates. Every candidate with the true first InChIKey block counts as correct (stereoisomers share the
    2-D skeleton and, without chirality in the fingerprint, the score); ties with wrong candidates count against
    the query (``rank_of_true``). Fingerprint quality compares the predictions with the true candidates' bits."""
    prediction = model.predict(spectra)
    n_bits = model.fingerprint_spec.n_bits
    queries, skipped, ranks, n_candidates, preds, truths = [], [], [], [], [], []
    for i, spectrum in enumerate(spectra):
        where = {"index": spectrum.index, "title": spectrum.title}
        block = true_inchikey_block(spectrum)
        if block is None:
            skipped.append({**where, "why": "no INCHIKEY or valid SMILES header"})
            continue
        if not prediction.ok(i):
            skipped.append({**where, "why": "spectrum rejected", "reason": prediction.errors[i].reason})
            continue
        candidates = _candidates_or_error(candidates_for, spectrum)
        if isinstance(candidates, Exception):
            skipped.append({**where, "why": "no candidates", "reason": str(candidates)})
            continue
        true_rows = [j for j, key in enumerate(candidates.inchikeys) if key[:14] == block]
        if not true_rows:
            skipped.append({**where, "why": "true structure not among the candidates", "inchikey_block": block})
            continue
        scores = np.asarray(candidate_scores(prediction.probs[i], candidates.bits), dtype=np.float64)
        rank = rank_of_true(scores, true_rows)
        best_true = true_rows[int(np.argmin(scores[true_rows]))]
        if isinstance(candidates.bits, OnBits):
            truths.append(candidates.bits[[best_true]].to_dense()[0])
        else:
            bits = np.asarray(candidates.bits[best_true])
            truths.append(np.unpackbits(bits, count=n_bits) if bits.shape[-1] != n_bits else bits)
        preds.append(prediction.probs[i])
        ranks.append(rank)
        n_candidates.append(len(candidates))
        queries.append({**where, "inchikey_block": block, "rank": rank, "n_candidates": len(candidates)})
    quality = fingerprint_quality(np.array(preds), np.array(truths)) if preds else None
    return RetrievalEvaluation(RetrievalReport.from_ranks(ranks, n_candidates, quality), queries, skipped)
