"""The CASMI 2017 evaluation from the contest's own files (``msvae evaluate-casmi2017 --data DIR``).

The folder is the contest's download, unzipped (the file names are those the public code that reads it uses, e.g.
github JosieHong/FIDDLE ``casmi2mgf.py`` and an MP-IOKR CASMI 2017 script)::

    DIR/
      CASMI-solutions.csv                      comma separated: Challenge (challenge-001 ...), SMILES, ...
      Chal1to45Summary.csv                     comma separated: MSMS_files, ESI Mode (Pos/Neg), ... (when any of
                                               challenges 1-45 is in the solutions)
      challenges-001-045-msms-mgf-20170908/    one folder per challenge range, each with
        summary-001-045.csv                      a tab-separated summary (challengename, ...)
        challenge-001-msms.mgf ...               one MS/MS spectrum per challenge
      challenges-046-243-msms-mgf-20170908/
        summary-046-243.csv
        challenge-046-msms.mgf ...
      challenges-*-candidates*/                optional: the official candidate lists, one
        challenge-046*.csv ...                   challenge-NNN*.csv (or .tsv/.txt) per challenge with a SMILES column

Every challenge of the solutions table needs its spectrum (and, when a candidate folder is given, its list); a
missing file stops the evaluation with a :class:`Casmi2017LayoutError` naming each missing file, never a partial
result. The ion mode comes from the summaries (a column whose name holds "mode": Pos/Neg, positive/negative) or
the MGF ``CHARGE``/``IONMODE``; negative-mode challenges are listed as skipped (the models are positive mode). The
precursor m/z is the MGF's ``PEPMASS``, else a summary column naming the precursor, else the solution's [M+H]+.

Candidates: the official lists when present; else every structure of the solution's molecular formula in the
structure library (``formula``, the true structure added when the library lacks it) or the library structures
within ``ppm`` of the solution's mass (``mass``). Ranking and the report are those of ``evaluate-retrieval``
(:func:`app.annotation.evaluate_retrieval`), plus the top-k curve (k = 1 ... 20).
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.annotation import CandidateSet, candidates_from_smiles, evaluate_retrieval
from app.candidates.readers import CandidateFileError
from models.featurize.adducts import DEFAULT_ADDUCT, ppm_window, precursor_mz
from models.featurize.fingerprints import (
    FingerprintSpec,
    molecule_from_smiles,
    pack_bits,
    parse_fingerprint_spec,
)
from models.featurize.mgf import Spectrum, SpectrumError, read_spectra
from models.spectra_model import SpectraModel
from training.spectra.formula_protocol import TOPK_MAX
from training.spectra.library import StructureLibrary

SOLUTIONS_FILE = "CASMI-solutions.csv"
SUMMARY_1_45_FILE = "Chal1to45Summary.csv"
_MSMS_DIR = re.compile(r"^challenges-(\d+)-(\d+)-msms-mgf(?:-.*)?$")
_CANDIDATE_DIR = re.compile(r"^challenges-(\d+)-(\d+)-candidates.*$")
_CHALLENGE = re.compile(r"challenge-(\d+)", re.IGNORECASE)
CANDIDATE_SUFFIXES = (".csv", ".tsv", ".txt")


class Casmi2017LayoutError(FileNotFoundError):
    """The folder lacks files of the official layout; ``missing`` lists each one (paths relative to the folder)."""

    def __init__(self, folder: Path, missing: list[str]):
        self.folder = folder
        self.missing = missing
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        super().__init__(f"{folder} is not a complete CASMI 2017 folder; missing: {shown}")


@dataclass
class Challenge:
    """One challenge: its number, solution SMILES, MS/MS spectrum file and, when given, official candidate list."""

    number: int
    solution_smiles: str
    spectrum_file: Path
    candidate_file: Path | None = None
    ion_mode: str | None = None  # "positive", "negative" or None (not stated)
    precursor_mz: float | None = None  # from a summary

    @property
    def name(self) -> str:
        return f"challenge-{self.number:03d}"


@dataclass
class Casmi2017Data:
    """The challenges of a CASMI 2017 folder, read and checked."""

    folder: Path
    challenges: list[Challenge]
    notes: list[str] = field(default_factory=list)


def _ranges(folder: Path, pattern: re.Pattern) -> list[tuple[int, int, Path]]:
    out = []
    for path in sorted(folder.iterdir()):
        m = pattern.match(path.name)
        if m and path.is_dir():
            out.append((int(m.group(1)), int(m.group(2)), path))
    return out


def _covering(ranges: list[tuple[int, int, Path]], number: int) -> Path | None:
    return next((path for lo, hi, path in ranges if lo <= number <= hi), None)


def _read_table(path: Path, delimiter: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        rows = list(csv.DictReader(f, delimiter=delimiter))
    # fields beyond the header (unquoted commas in an InChI, say) go under the key None: left out
    return [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None} for row in rows]


def _column(rows: list[dict[str, str]], *needles: str) -> str | None:
    """The first column name containing one of ``needles`` (lower case)."""
    names = list(rows[0]) if rows else []
    return next((name for needle in needles for name in names if needle in name), None)


def _mode(value: str) -> str | None:
    v = value.strip().lower()
    if v.startswith("pos") or v == "+":
        return "positive"
    if v.startswith("neg") or v == "-":
        return "negative"
    return None


def _number(text: str) -> int | None:
    m = _CHALLENGE.search(text)
    return int(m.group(1)) if m else None


def _summary_facts(rows: list[dict[str, str]]) -> dict[int, dict[str, Any]]:
    """Ion mode and precursor m/z per challenge number from a summary table (whatever columns it has)."""
    name_col = _column(rows, "challengename", "msms_file", "challenge", "ms_file")
    mode_col = _column(rows, "mode")
    mz_col = _column(rows, "precursor")
    facts: dict[int, dict[str, Any]] = {}
    for row in rows:
        number = _number(row.get(name_col, "")) if name_col else None
        if number is None:
            continue
        entry = facts.setdefault(number, {})
        if mode_col and _mode(row[mode_col]):
            entry["ion_mode"] = _mode(row[mode_col])
        if mz_col:
            with contextlib.suppress(ValueError):
                entry["precursor_mz"] = float(row[mz_col])
    return facts


def read_casmi2017(folder: str | Path) -> Casmi2017Data:
    """Read and check a CASMI 2017 folder in the official layout (module doc).

    Raises :class:`Casmi2017LayoutError` naming every missing file (relative to ``folder``), and ValueError for a
    solutions table without ``Challenge`` and ``SMILES`` columns.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise Casmi2017LayoutError(folder, [f"{folder} (no such folder)"])
    if not (folder / SOLUTIONS_FILE).is_file():
        raise Casmi2017LayoutError(folder, [SOLUTIONS_FILE])
    solutions = _read_table(folder / SOLUTIONS_FILE, ",")
    challenge_col, smiles_col = _column(solutions, "challenge"), _column(solutions, "smiles")
    if not solutions or challenge_col is None or smiles_col is None:
        raise ValueError(f"{folder / SOLUTIONS_FILE}: needs a header row with Challenge and SMILES columns")
    wanted = {}
    for row in solutions:
        number = _number(row[challenge_col])
        if number is not None and row[smiles_col]:
            wanted[number] = row[smiles_col]

    missing: list[str] = []
    msms_dirs = _ranges(folder, _MSMS_DIR)
    candidate_dirs = _ranges(folder, _CANDIDATE_DIR)
    if not msms_dirs:
        missing.append("challenges-AAA-BBB-msms-mgf-<date>/ (no MS/MS spectra folder)")
    facts: dict[int, dict[str, Any]] = {}
    for lo, hi, path in msms_dirs:
        summary = path / f"summary-{lo:03d}-{hi:03d}.csv"
        if summary.is_file():
            for number, entry in _summary_facts(_read_table(summary, "\t")).items():
                facts.setdefault(number, {}).update(entry)
        elif any(lo <= n <= hi for n in wanted):
            missing.append(str(summary.relative_to(folder)))
    if any(1 <= n <= 45 for n in wanted):
        if (folder / SUMMARY_1_45_FILE).is_file():
            for number, entry in _summary_facts(_read_table(folder / SUMMARY_1_45_FILE, ",")).items():
                facts.setdefault(number, {}).update(entry)
        else:
            missing.append(SUMMARY_1_45_FILE)

    challenges = []
    for number in sorted(wanted):
        name = f"challenge-{number:03d}"
        msms_dir = _covering(msms_dirs, number)
        spectrum_file = (msms_dir or folder) / f"{name}-msms.mgf"
        if msms_dir is None:
            if msms_dirs:
                missing.append(f"{name}-msms.mgf (no challenges-*-msms-mgf-* folder covers challenge {number})")
        elif not spectrum_file.is_file():
            missing.append(str(spectrum_file.relative_to(folder)))
        candidate_file = None
        if candidate_dirs:
            cand_dir = _covering(candidate_dirs, number)
            found = sorted(p for p in cand_dir.glob(f"{name}*") if p.suffix in CANDIDATE_SUFFIXES) if cand_dir else []
            if found:
                candidate_file = found[0]
            else:
                where = cand_dir.name if cand_dir else "challenges-*-candidates*"
                missing.append(f"{where}/{name}.csv")
        challenges.append(Challenge(number, wanted[number], spectrum_file, candidate_file, **facts.get(number, {})))
    if missing:
        raise Casmi2017LayoutError(folder, missing)
    return Casmi2017Data(folder, challenges)


def challenge_spectrum(challenge: Challenge) -> Spectrum | SpectrumError:
    """The challenge's MS/MS spectrum, titled by the challenge, with its solution as the ``SMILES`` header (what
    evaluate-retrieval scores against). The precursor m/z: PEPMASS, else the summary's, else [M+H]+ of the
    solution (``params["precursor_from"]`` says which)."""
    items = list(read_spectra(challenge.spectrum_file, require_precursor=False))
    spectrum = next((s for s in items if isinstance(s, Spectrum)), None)
    if spectrum is None:
        return items[0] if items else SpectrumError("no spectrum", title=challenge.name)
    params = {**spectrum.params, "smiles": challenge.solution_smiles, "precursor_from": "PEPMASS"}
    mz = spectrum.precursor_mz
    if mz is None and challenge.precursor_mz is not None:
        mz, params["precursor_from"] = challenge.precursor_mz, "summary"
    if mz is None:
        mass = molecule_from_smiles(challenge.solution_smiles, None).monoisotopic_mass
        mz, params["precursor_from"] = float(precursor_mz(mass, DEFAULT_ADDUCT)), "solution [M+H]+"
    return Spectrum(0, challenge.name, mz, spectrum.charge, spectrum.mz, spectrum.intensity, params)


def ion_mode(challenge: Challenge, spectrum: Spectrum) -> str | None:
    """The challenge's ion mode: the summaries', else the MGF's IONMODE or CHARGE sign; None when unstated."""
    if challenge.ion_mode:
        return challenge.ion_mode
    stated = _mode(spectrum.params.get("ionmode", "") or spectrum.params.get("ion_mode", ""))
    if stated:
        return stated
    if spectrum.charge:
        return "positive" if spectrum.charge > 0 else "negative"
    return None


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
        rows = _read_table(path, "\t" if sample.count("\t") > sample.count(",") else ",")
        column = _column(rows, "smiles")
        if column is None:
            raise CandidateFileError(f"{path}: official candidate list without a SMILES column")
        cands, bad = candidates_from_smiles([r[column] for r in rows], spec)
        rejected.extend(f"{path.name} row {i + 2}: {reason}" for i, reason in bad)
        return cands

    return candidates_for


def topk_counts(ranks: list[int], k_max: int = TOPK_MAX) -> list[int]:
    """Number of queries with the true structure within the top k, k = 1 ... ``k_max``."""
    r = np.asarray(ranks)
    return [int(np.count_nonzero(r <= k)) for k in range(1, k_max + 1)]


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

    from app.annotate_cli import CommandError, load_model
    from app.settings import Settings
    from models.retrieval import RetrievalReport
    from training.spectra.casmi_report import plot_topk
    from training.spectra.library import open_library

    settings = Settings()
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
