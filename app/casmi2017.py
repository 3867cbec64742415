"""The CASMI 2017 evaluation (``msvae evaluate-casmi2017 --data DIR``): the contest's files read by
:mod:`training.spectra.casmi2017`, each positive-mode challenge's solution ranked among its candidates with the
ranking and report of ``evaluate-retrieval`` (:func:`app.annotation.evaluate_retrieval`), plus the top-k curve.

Candidates: the official lists when present; else every structure of the solution's molecular formula in the
structure library (``formula``, the true structure added when the library lacks it) or the library structures
within ``ppm`` of the solution's mass (``mass``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.annotation import CandidateSet, candidates_from_smiles, evaluate_retrieval
from app.candidates.readers import CandidateFileError
from models.featurize.adducts import ppm_window
from models.featurize.fingerprints import FingerprintSpec, molecule_from_smiles, pack_bits, parse_fingerprint_spec
from models.featurize.mgf import Spectrum, SpectrumError
from models.spectra_model import SpectraModel
from training.spectra.casmi2017 import (
    Casmi2017Data,
    Casmi2017LayoutError,
    Challenge,
    challenge_spectrum,
    find_column,
    ion_mode,
    read_casmi2017,
    read_table,
    topk_counts,
)
from training.spectra.library import StructureLibrary


def library_candidates(
    library: StructureLibrary, spec: FingerprintSpec | str, mode: str = "formula", ppm: float = 10.0
) -> tuple[Callable[[Spectrum], CandidateSet], list[str]]:
    """``candidates_for`` drawing each spectrum's candidates from the library by its solution (``SMILES`` header):
    every structure of its formula (``mode="formula"``) or within ``ppm`` of its monoisotopic mass (``"mass"``),
    the true structure added when the library lacks it. Returns the callable and the list it appends the titles
    of those queries to."""
    spec = parse_fingerprint_spec(spec)
    if mode not in ("formula", "mass"):
        raise ValueError(f"candidate mode must be formula or mass, not {mode!r}")
    added: list[str] = []

    def candidates_for(spectrum: Spectrum) -> CandidateSet:
        true = molecule_from_smiles(spectrum.smiles or "", spec)
        if mode == "formula":
            formulas = [true.formula]
        else:
            low, high = ppm_window(true.monoisotopic_mass, ppm)
            in_window = (library.masses >= low) & (library.masses <= high)
            formulas = sorted(set(library.formulas[library.formula_of[in_window]]))
        smiles, blocks, forms, packed = [], [], [], []
        for formula in formulas:
            cands = library.formula_candidates(formula, spec)
            smiles += list(cands.smiles)
            blocks += list(cands.blocks)
            forms += [formula] * len(cands)
            packed.append(cands.packed_bits)
        if true.inchikey_block not in set(blocks):
            smiles.append(true.smiles)
            blocks.append(true.inchikey_block)
            forms.append(true.formula)
            packed.append(pack_bits(true.bits[None, :]))
            added.append(spectrum.title)
        return CandidateSet(smiles, blocks, forms, np.concatenate(packed))

    return candidates_for, added


def official_candidates(
    challenges: dict[str, Challenge], spec: FingerprintSpec | str, rejected: list[str]
) -> Callable[[Spectrum], CandidateSet]:
    """``candidates_for`` reading each challenge's official list (a SMILES column; comma or tab separated)."""

    def candidates_for(spectrum: Spectrum) -> CandidateSet:
        path = challenges[spectrum.title].candidate_file
        assert path is not None
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            sample = f.read(4096)
        rows = read_table(path, "\t" if sample.count("\t") > sample.count(",") else ",")
        column = find_column(rows, "smiles")
        if column is None:
            raise CandidateFileError(f"{path}: official candidate list without a SMILES column")
        cands, bad = candidates_from_smiles([r[column] for r in rows], spec)
        rejected.extend(f"{path.name} row {i + 2}: {reason}" for i, reason in bad)
        return cands

    return candidates_for


def evaluate_casmi2017(
    data: Casmi2017Data,
    model: SpectraModel,
    library: StructureLibrary | None = None,
    *,
    candidates: str = "auto",
    ppm: float = 10.0,
) -> dict[str, Any]:
    """Rank each positive-mode challenge's solution among its candidates with ``model``.

    Args:
        candidates: "official" (the contest's lists), "formula" or "mass" (from ``library``), or "auto" (official
            when the folder has the lists, else formula).

    Returns the evaluate-retrieval report (``n``, ``top1`` ..., ``queries``, ``skipped``) plus ``topk_counts``,
    ``candidates`` (the source used), ``true_added`` and ``precursor_from`` counts.
    """
    has_official = all(c.candidate_file is not None for c in data.challenges)
    source = ("official" if has_official else "formula") if candidates == "auto" else candidates
    if source == "official" and not has_official:
        raise ValueError("the folder has no official candidate lists; use formula or mass candidates")
    if source in ("formula", "mass") and library is None:
        raise ValueError(f"{source} candidates need the structure library")
    spectra, skipped, rejected = [], [], []
    by_name = {c.name: c for c in data.challenges}
    precursor_from: dict[str, int] = {}
    for challenge in data.challenges:
        spectrum = challenge_spectrum(challenge)
        if isinstance(spectrum, SpectrumError):
            skipped.append({"title": challenge.name, "why": "spectrum unreadable", "reason": spectrum.reason})
            continue
        mode = ion_mode(challenge, spectrum)
        if mode == "negative":
            skipped.append({"title": challenge.name, "why": "negative ion mode"})
            continue
        precursor_from[spectrum.params["precursor_from"]] = precursor_from.get(spectrum.params["precursor_from"], 0) + 1
        spectra.append(Spectrum(len(spectra), spectrum.title, spectrum.precursor_mz, spectrum.charge, spectrum.mz,
                                spectrum.intensity, spectrum.params))  # fmt: skip
    added: list[str] = []
    if source == "official":
        candidates_for = official_candidates(by_name, model.fingerprint_spec, rejected)
    else:
        assert library is not None
        candidates_for, added = library_candidates(library, model.fingerprint_spec, source, ppm)
    evaluation = evaluate_retrieval(model, spectra, candidates_for)
    doc = evaluation.to_dict()
    skipped += doc["skipped"]
    reasons: dict[str, int] = {}
    for s in skipped:
        reasons[s["why"]] = reasons.get(s["why"], 0) + 1
    return {
        **doc,
        "n_skipped": len(skipped),
        "skipped_by_reason": reasons,
        "skipped": skipped,
        "challenges": len(data.challenges),
        "topk_counts": topk_counts([q["rank"] for q in evaluation.queries]),
        "candidates": source,
        "true_added": len(added),
        "precursor_from": precursor_from,
        "rejected_candidate_rows": rejected,
    }


def run_evaluate_casmi2017(args: Any) -> int:
    """``msvae evaluate-casmi2017 --data DIR [--model M] [--out R.json] [--candidates ...]``: exit status 1 with a
    message naming the missing files for an incomplete folder; else writes the JSON report and the top-k plot
    (``R.png``) and prints the summary table."""
    import json
    import sys

    from app.cli.annotate import CommandError, load_model
    from app.settings import get_settings
    from models.retrieval import RetrievalReport
    from training.spectra.casmi_report import plot_topk
    from training.spectra.library import open_library

    settings = get_settings()
    out = Path(args.out or "casmi2017.retrieval.json")
    try:
        data = read_casmi2017(args.data)
        model = load_model(args.model, settings)
    except (Casmi2017LayoutError, ValueError, CommandError) as exc:
        print(f"msvae evaluate-casmi2017: {exc}", file=sys.stderr)
        return 1
    library = None
    if args.candidates != "official" and not (
        args.candidates == "auto" and all(c.candidate_file for c in data.challenges)
    ):
        try:
            library = open_library(
                args.library or settings.data_dir, args.library_cache or settings.data_dir / "library"
            )
        except FileNotFoundError as exc:
            print(f"msvae evaluate-casmi2017: {exc}", file=sys.stderr)
            return 1
    doc = {
        "model": model.name,
        "data": str(args.data),
        **evaluate_casmi2017(data, model, library, candidates=args.candidates, ppm=args.ppm),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    png = plot_topk({model.name: [doc["topk_counts"]]}, out.with_suffix(".png"),
                    f"CASMI 2017, candidates: {doc['candidates']}", doc["n"])  # fmt: skip
    report = RetrievalReport(**{k: doc[k] for k in RetrievalReport.__dataclass_fields__})
    print(report.to_markdown(f"CASMI 2017 ({args.data}): model {model.name}, candidates {doc['candidates']}"), end="")
    for s in doc["skipped"]:
        print(f"skipped {s['title']}: {s['why']}", file=sys.stderr)
    print(f"report: {out}\ntop-k curve: {png}")
    return 0
