"""Reading the CASMI 2017 contest's own files (for ``msvae evaluate-casmi2017 --data DIR``).

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

The evaluation (candidates, ranking, report) is :mod:`app.casmi2017`, beside ``evaluate-retrieval``'s.
"""

from __future__ import annotations

import contextlib
import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.featurize.adducts import DEFAULT_ADDUCT, precursor_mz
from models.featurize.fingerprints import molecule_from_smiles
from models.featurize.mgf import Spectrum, SpectrumError, read_spectra
from training.spectra.formula_protocol import TOPK_MAX

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


def read_table(path: Path, delimiter: str) -> list[dict[str, str]]:
    """The rows of a delimited table with a header, keys lower-cased, values stripped."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        rows = list(csv.DictReader(f, delimiter=delimiter))
    # fields beyond the header (unquoted commas in an InChI, say) go under the key None: left out
    return [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None} for row in rows]


def find_column(rows: list[dict[str, str]], *needles: str) -> str | None:
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
    name_col = find_column(rows, "challengename", "msms_file", "challenge", "ms_file")
    mode_col = find_column(rows, "mode")
    mz_col = find_column(rows, "precursor")
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
    solutions = read_table(folder / SOLUTIONS_FILE, ",")
    challenge_col, smiles_col = find_column(solutions, "challenge"), find_column(solutions, "smiles")
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
            for number, entry in _summary_facts(read_table(summary, "\t")).items():
                facts.setdefault(number, {}).update(entry)
        elif any(lo <= n <= hi for n in wanted):
            missing.append(str(summary.relative_to(folder)))
    if any(1 <= n <= 45 for n in wanted):
        if (folder / SUMMARY_1_45_FILE).is_file():
            for number, entry in _summary_facts(read_table(folder / SUMMARY_1_45_FILE, ",")).items():
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


def topk_counts(ranks: list[int], k_max: int = TOPK_MAX) -> list[int]:
    """Number of queries with the true structure within the top k, k = 1 ... ``k_max``."""
    r = np.asarray(ranks)
    return [int(np.count_nonzero(r <= k)) for k in range(1, k_max + 1)]
