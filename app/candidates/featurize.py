"""The RDKit work of a candidate import, one chunk of records at a time, in this process or a worker process.

A chunk is featurized independently of the others (so chunks can go to a process pool), into rows ready to
insert; the importer adds what is the same for every row (spec, source, time) and counts what the database
refuses as a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.candidates.readers import Entry
from models.featurize.fingerprints import InvalidMoleculeError, molecule_from_smiles, pack_bits


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
    """Rows to insert (candidate table columns except spec, source and time), duplicates within the chunk, and
    the rejected records, of ``n_entries`` input records."""

    n_entries: int
    rows: list[dict[str, str | float | bytes | None]] = field(default_factory=list)
    duplicate: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def featurize_chunk(entries: list[Entry], spec: str) -> FeaturizedChunk:
    """Canonical SMILES, InChIKey, formula, mass and packed fingerprint (of ``spec``) of each record.

    A SMILES repeated as written, or a molecule whose InChIKey came earlier in the chunk, is a duplicate; a record
    without a usable SMILES is rejected with its reason.
    """
    out = FeaturizedChunk(len(entries))
    seen_smiles: set[str] = set()  # as written, so a repeated SMILES is not featurized again
    seen_keys: set[str] = set()
    for entry in entries:
        if entry.smiles is None:
            out.rejected.append(_rejection(entry, entry.error or "no SMILES"))
            continue
        if entry.smiles in seen_smiles:
            out.duplicate += 1
            continue
        try:
            molecule = molecule_from_smiles(entry.smiles, spec)
        except InvalidMoleculeError as exc:
            out.rejected.append(_rejection(entry, str(exc)))
            continue
        seen_smiles.add(entry.smiles)
        if molecule.inchikey in seen_keys:
            out.duplicate += 1
            continue
        seen_keys.add(molecule.inchikey)
        out.rows.append(
            {
                "inchikey": molecule.inchikey,
                "inchikey_block": molecule.inchikey_block,
                "smiles": molecule.smiles,
                "name": entry.name,
                "formula": molecule.formula,
                "monoisotopic_mass": float(molecule.monoisotopic_mass),
                "fingerprint": pack_bits(molecule.bits).tobytes(),
            }
        )
    return out


def _rejection(entry: Entry, reason: str) -> Rejection:
    return Rejection(entry.line, f"{entry.label}: {reason}" if entry.label else reason, entry.record)
