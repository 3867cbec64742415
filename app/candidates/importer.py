"""Adding molecules to the candidate database (``msvae candidates import`` and ``POST /v1/candidates``)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.candidates.readers import CandidateFileError, Entry, open_entries
from app.db import Candidate, utcnow
from models.featurize.fingerprints import (
    DEFAULT_FINGERPRINT_SPEC,
    FingerprintSpec,
    InvalidMoleculeError,
    molecule_from_smiles,
    pack_bits,
    parse_fingerprint_spec,
)

BATCH_SIZE = 1000

# INSERT ... ON CONFLICT DO NOTHING, so two imports racing on one molecule count it once instead of failing.
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclass(frozen=True)
class Rejection:
    """A record that was not imported: where it is (1-based line; SDF record or MGF spectrum index) and why."""

    line: int | None
    reason: str
    record: int | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line is not None else self.reason

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "record": self.record, "reason": self.reason}


@dataclass
class ImportReport:
    """What an import did: molecules added, duplicates skipped (already in the database or earlier in the
    file, by InChIKey), and the rejected records."""

    format: str
    added: int = 0
    duplicate: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "added": self.added,
            "duplicate": self.duplicate,
            "rejected": [r.to_dict() for r in self.rejected],
        }


def import_candidates(
    session: Session,
    data: str | bytes | PathLike[str],
    fmt: str | None = None,
    *,
    filename: str | None = None,
    source: str | None = None,
    spec: FingerprintSpec | str = DEFAULT_FINGERPRINT_SPEC,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Add the molecules of ``data`` to the candidate table, with fingerprint, InChIKey, formula and mass.

    Args:
        data: a path (plain or gzip), or the content itself as ``bytes`` or ``str``.
        fmt: "smiles", "tsv", "sdf" or "mgf"; None guesses from ``filename`` / the path, else the content.
        filename: the name of an uploaded file, only used to guess the format.
        source: stored with each new molecule (e.g. the file or database it came from).
        spec: the fingerprint to store (the served model's).

    Molecules already present (same InChIKey) are counted as duplicates, so importing a file twice adds
    nothing the second time. Rows are inserted in batches, each batch committed.

    Raises:
        CandidateFileError: the input as a whole is unreadable (binary, no ``smiles`` column, unknown format,
            a corrupt gzip stream).
    """
    spec = parse_fingerprint_spec(spec)
    make_insert = _INSERTS.get(session.get_bind().dialect.name)
    if make_insert is None:
        raise NotImplementedError("candidate import supports SQLite and PostgreSQL")
    try:
        with open_entries(data, fmt, filename) as (found_format, entries):
            report = ImportReport(found_format)
            _import_entries(session, make_insert, entries, report, spec, source, batch_size)
    except (OSError, EOFError, zlib.error) as exc:  # an unreadable file, a corrupt or cut gzip stream
        # Batches before the failure stay committed; importing the repaired file again adds the rest.
        raise CandidateFileError(f"cannot read the input: {exc}") from exc
    return report


def _import_entries(
    session: Session,
    make_insert: Any,
    entries: Iterator[Entry],
    report: ImportReport,
    spec: FingerprintSpec,
    source: str | None,
    batch_size: int,
) -> None:
    """Featurize ``entries`` and insert the new molecules batch by batch, counting into ``report``."""
    seen_smiles: set[str] = set()  # as written, so a repeated SMILES is not featurized again
    seen_keys: set[str] = set()
    batch: list[dict[str, Any]] = []
    for entry in entries:
        if entry.smiles is None:
            report.rejected.append(_rejection(entry, entry.error or "no SMILES"))
            continue
        if entry.smiles in seen_smiles:
            report.duplicate += 1
            continue
        try:
            molecule = molecule_from_smiles(entry.smiles, spec)
        except InvalidMoleculeError as exc:
            report.rejected.append(_rejection(entry, str(exc)))
            continue
        seen_smiles.add(entry.smiles)
        if molecule.inchikey in seen_keys:
            report.duplicate += 1
            continue
        seen_keys.add(molecule.inchikey)
        batch.append(
            {
                "inchikey": molecule.inchikey,
                "inchikey_block": molecule.inchikey[:14],
                "smiles": molecule.smiles,
                "name": entry.name,
                "formula": molecule.formula,
                "monoisotopic_mass": float(molecule.monoisotopic_mass),
                "fingerprint_spec": spec.text,
                "fingerprint": pack_bits(molecule.bits).tobytes(),
                "source": source,
                "created_at": utcnow(),
            }
        )
        if len(batch) >= batch_size:
            _insert(session, make_insert, batch, report)
            batch = []
    _insert(session, make_insert, batch, report)


def _rejection(entry: Entry, reason: str) -> Rejection:
    return Rejection(entry.line, f"{entry.label}: {reason}" if entry.label else reason, entry.record)


def _insert(session: Session, make_insert: Any, rows: list[dict[str, Any]], report: ImportReport) -> None:
    """Insert ``rows``, skipping InChIKeys already stored, and commit."""
    if not rows:
        return
    statement: Insert = make_insert(Candidate).on_conflict_do_nothing(index_elements=["inchikey"])
    added = len(session.execute(statement.returning(Candidate.id), rows).all())
    session.commit()
    report.added += added
    report.duplicate += len(rows) - added
