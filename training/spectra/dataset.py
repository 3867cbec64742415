"""MassBank spectra with structures, and their split into train / validation / test by structure.

Every record's structure is identified by the first block (14 characters, the 2-D skeleton) of the InChIKey that
RDKit computes from its SMILES, the same key the candidate database uses; the file's ``INCHIKEY`` header, where
present, stays in ``spectrum.params``. A split puts all spectra of one structure in one part, so no test molecule
has a spectrum in training (stereoisomers share a block, so they stay together too).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.featurize.fingerprints import InvalidMoleculeError, Molecule, molecule_from_smiles
from models.featurize.mgf import Spectrum, SpectrumError, read_spectra

PARTS = ("train", "val", "test")


@dataclass(eq=False)
class SpectrumRecord:
    """A spectrum with its structure (RDKit canonical SMILES, InChIKey, formula and monoisotopic mass)."""

    spectrum: Spectrum
    smiles: str
    inchikey: str
    formula: str
    monoisotopic_mass: float
    adduct: str | None
    instrument: str | None

    @property
    def inchikey_block(self) -> str:
        return self.inchikey[:14]

    @property
    def title(self) -> str:
        return self.spectrum.title


@dataclass
class MassBankData(Sequence[SpectrumRecord]):
    """The usable records of a MassBank MGF file (a sequence of :class:`SpectrumRecord`) and the rejected spectra
    with their reasons (unreadable spectrum, no SMILES, SMILES that RDKit or InChI cannot handle)."""

    records: list[SpectrumRecord]
    rejected: list[SpectrumError] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index):  # type: ignore[override]
        return self.records[index]

    def __iter__(self) -> Iterator[SpectrumRecord]:
        return iter(self.records)

    def summary(self) -> dict[str, Any]:
        """Counts of spectra read, accepted and rejected (by reason), and of distinct structures."""
        reasons = Counter(err.reason.split(":")[0] for err in self.rejected)
        return {
            "source": self.source,
            "spectra_read": len(self.records) + len(self.rejected),
            "spectra": len(self.records),
            "structures": len({r.inchikey_block for r in self.records}),
            "rejected": len(self.rejected),
            "rejected_by_reason": dict(reasons.most_common()),
        }


def load_massbank(path: str | Path, *, limit: int | None = None) -> MassBankData:
    """Read a MassBank MGF (plain or gzip) into records; ``limit``: only the first ``limit`` spectra.

    Spectra without a usable structure are not dropped silently: they are in ``rejected`` with the reason.
    """
    records: list[SpectrumRecord] = []
    rejected: list[SpectrumError] = []
    molecules: dict[str, Molecule | InvalidMoleculeError] = {}  # by SMILES as written: a structure has many spectra
    for n, item in enumerate(read_spectra(path)):
        if limit is not None and n >= limit:
            break
        if isinstance(item, SpectrumError):
            rejected.append(item)
            continue
        if item.smiles is None:
            rejected.append(SpectrumError("no SMILES", index=item.index, title=item.title))
            continue
        if item.smiles not in molecules:
            try:
                molecules[item.smiles] = molecule_from_smiles(item.smiles, None)  # identity only, no bits
            except InvalidMoleculeError as exc:
                molecules[item.smiles] = exc
        mol = molecules[item.smiles]
        if isinstance(mol, InvalidMoleculeError):
            rejected.append(SpectrumError(f"invalid SMILES: {mol.reason}", index=item.index, title=item.title))
            continue
        records.append(
            SpectrumRecord(
                spectrum=item,
                smiles=mol.smiles,
                inchikey=mol.inchikey,
                formula=mol.formula,
                monoisotopic_mass=mol.monoisotopic_mass,
                adduct=item.adduct,
                instrument=item.params.get("instrument_type"),
            )
        )
    return MassBankData(records, rejected, str(path))


@dataclass
class Split:
    """Record indices (sorted) of each part, and the InChIKey blocks (sorted) that define the parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    blocks: dict[str, list[str]]
    seed: int
    fractions: tuple[float, float, float]

    def part(self, name: str) -> np.ndarray:
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    def counts(self) -> dict[str, dict[str, int]]:
        """Spectra and structures per part."""
        return {name: {"spectra": len(self.part(name)), "structures": len(self.blocks[name])} for name in PARTS}


def _block(record: SpectrumRecord | str) -> str:
    return (record if isinstance(record, str) else record.inchikey)[:14]


def split_by_structure(
    records: Sequence[SpectrumRecord] | Sequence[str],
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> Split:
    """Split records (or bare InChIKeys) by first InChIKey block into train / val / test structure fractions.

    The distinct blocks are ordered by SHA-256 of ``"<seed>:<block>"`` and cut at the fractions (of structures,
    not spectra): deterministic on any machine and numpy version, and a structure added later does not move the
    others between parts.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    keys = [_block(r) for r in records]
    order = sorted(set(keys), key=lambda b: hashlib.sha256(f"{seed}:{b}".encode()).hexdigest())
    n_train = round(fractions[0] * len(order))
    n_val = round(fractions[1] * len(order))
    cuts = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
    return _split_from_blocks(keys, cuts, seed, tuple(fractions))


def _split_from_blocks(keys: list[str], blocks: dict[str, list[str]], seed: int, fractions: tuple) -> Split:
    where = {b: name for name in PARTS for b in blocks[name]}
    missing = {k for k in keys if k not in where}
    if missing:
        raise ValueError(f"{len(missing)} structures are in no part of the split, e.g. {sorted(missing)[:3]}")
    index = {name: np.array([i for i, k in enumerate(keys) if where[k] == name], dtype=np.int64) for name in PARTS}
    present = set(keys)
    kept = {name: sorted(b for b in blocks[name] if b in present) for name in PARTS}
    return Split(index["train"], index["val"], index["test"], kept, seed, fractions)


def write_split(split: Split, path: str | Path, *, source: str | None = None) -> None:
    """Write the split as JSON: method, seed, fractions, counts per part and the InChIKey blocks of each part."""
    doc = {
        "method": "first InChIKey block (RDKit, from SMILES); blocks ordered by sha256('<seed>:<block>'), cut at "
        "the structure fractions",
        "source": source,
        "seed": split.seed,
        "fractions": list(split.fractions),
        "counts": split.counts(),
        "blocks": split.blocks,
    }
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")


def read_split(path: str | Path, records: Sequence[SpectrumRecord] | Sequence[str]) -> Split:
    """The split written by :func:`write_split`, as indices into ``records`` (each must be in some part)."""
    doc = json.loads(Path(path).read_text())
    return _split_from_blocks(
        [_block(r) for r in records], doc["blocks"], int(doc["seed"]), tuple(float(f) for f in doc["fractions"])
    )
