"""The RDKit work of a candidate import, one chunk of records at a time, in this process or a worker process.

A chunk is featurized independently of the others (so chunks can go to a process pool), into rows ready to
insert; the importer adds what is the same for every row (spec, source, time) and counts what the database
refuses as a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from rdkit import Chem

from app.candidates.readers import Entry
from models.featurize.fingerprints import (
    FingerprintSpec,
    InvalidMoleculeError,
    fingerprint_bits,
    mol_from_smiles,
    molecule_from_mol,
    pack_bits,
    parse_fingerprint_spec,
)


@dataclass(frozen=True)
class Rejection:
    """A record that was not imported: where it is (1-based line; SDF record or MGF spectrum index) and why."""

    line: int | None
    reason: str
    record: int | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line is not None else self.reason

    def to_dict(self) -> dict[str, int | str | None]:
        return {"line": self.line, "record": self.record, "reason": self.reason}


@dataclass
class FeaturizedChunk:
    """The molecules to insert, column by column (the candidate table's columns except spec, source and time;
    row ``i`` of every column is one molecule), the duplicates within the chunk, and the rejected records, of
    ``n_entries`` input records. Columns rather than a dict per row: a chunk crosses from a worker process in one
    small pickle, and the inserts take the columns as they are."""

    n_entries: int
    inchikeys: list[str] = field(default_factory=list)
    smiles: list[str] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)
    formulas: list[str] = field(default_factory=list)
    masses: list[float] = field(default_factory=list)
    fingerprints: list[bytes] = field(default_factory=list)  # packed (``pack_bits``), one per molecule
    duplicate: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.inchikeys)


@lru_cache(maxsize=8)
def _spec(text: str) -> FingerprintSpec:
    """The parsed spec, once per process (parsing and its bit mask cost more than a molecule's identity)."""
    return parse_fingerprint_spec(text)


def featurize_chunk(entries: list[Entry], spec: str) -> FeaturizedChunk:
    """Canonical SMILES, InChIKey, formula, mass and packed fingerprint (of ``spec``) of each record.

    A SMILES repeated as written, or a molecule whose InChIKey came earlier in the chunk, is a duplicate; a record
    without a usable SMILES is rejected with its reason.

    Each molecule's identity is :func:`~models.featurize.fingerprints.molecule_from_mol`'s, without the
    fingerprint; the fingerprints of the chunk's new molecules are then made in one call (one generator per
    fingerprint part, the bit selection applied once), and a duplicate gets none.
    """
    out = FeaturizedChunk(len(entries))
    seen_smiles: set[str] = set()  # as written, so a repeated SMILES is not featurized again
    seen_keys: set[str] = set()
    mols: list[Chem.Mol] = []
    for entry in entries:
        if entry.smiles is None:
            out.rejected.append(_rejection(entry, entry.error or "no SMILES"))
            continue
        if entry.smiles in seen_smiles:
            out.duplicate += 1
            continue
        try:
            mol = mol_from_smiles(entry.smiles)
            molecule = molecule_from_mol(mol, None, entry.smiles)
        except InvalidMoleculeError as exc:
            out.rejected.append(_rejection(entry, str(exc)))
            continue
        seen_smiles.add(entry.smiles)
        if molecule.inchikey in seen_keys:
            out.duplicate += 1
            continue
        seen_keys.add(molecule.inchikey)
        mols.append(mol)
        out.inchikeys.append(molecule.inchikey)
        out.smiles.append(molecule.smiles)
        out.names.append(entry.name)
        out.formulas.append(molecule.formula)
        out.masses.append(float(molecule.monoisotopic_mass))
    if mols:
        packed = pack_bits(fingerprint_bits(mols, _spec(spec)))
        out.fingerprints = [row.tobytes() for row in packed]
    return out


def _rejection(entry: Entry, reason: str) -> Rejection:
    return Rejection(entry.line, f"{entry.label}: {reason}" if entry.label else reason, entry.record)
