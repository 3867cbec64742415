"""Candidate look-ups for ranking: an in-memory packed fingerprint matrix sorted by mass, and indexed
database queries for the HTTP listing.

The ranking never touches SMILES at query time: :class:`CandidateStore` keeps every candidate's packed
fingerprint, mass, formula, SMILES and InChIKey in arrays, and a mass window is two binary searches.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.db import Candidate
from models.featurize.adducts import ppm_window
from models.featurize.fingerprints import (
    FingerprintSpec,
    fingerprint_bits,
    pack_bits,
    parse_fingerprint_spec,
    unpack_bits,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class CandidateMatrix:
    """An immutable snapshot of the candidates, sorted by monoisotopic mass.

    Row ``i`` of every array is the same molecule; ``packed`` holds the fingerprint bits of ``spec``
    (``np.packbits`` order, (N, ceil(n_bits / 8)) uint8).
    """

    spec: FingerprintSpec
    ids: np.ndarray  # database ids (int64)
    masses: np.ndarray  # float64, ascending
    packed: np.ndarray
    smiles: np.ndarray  # object arrays of str, so they take index arrays
    inchikeys: np.ndarray
    formulas: np.ndarray

    @classmethod
    def empty(cls, spec: FingerprintSpec) -> CandidateMatrix:
        strings = np.empty(0, dtype=object)
        n_bytes = (spec.n_bits + 7) // 8
        return cls(
            spec, np.empty(0, np.int64), np.empty(0), np.empty((0, n_bytes), np.uint8), strings, strings, strings
        )

    def __len__(self) -> int:
        return len(self.ids)

    def by_mass(self, neutral_mass: float, ppm: float) -> np.ndarray:
        """Indices of the candidates whose monoisotopic mass is within ``ppm`` of ``neutral_mass`` (ascending mass)."""
        low, high = ppm_window(neutral_mass, ppm)
        start = np.searchsorted(self.masses, low, side="left")
        stop = np.searchsorted(self.masses, high, side="right")
        return np.arange(start, stop)

    def by_formula(self, formula: str) -> np.ndarray:
        """Indices of the candidates with molecular formula ``formula`` (as RDKit writes it, e.g. ``C6H12O6``)."""
        return self._formula_index.get(formula.strip(), np.empty(0, dtype=np.int64))

    def bits(self, indices: np.ndarray) -> np.ndarray:
        """Unpacked fingerprint bits (len(indices), n_bits) uint8 of the candidates at ``indices``."""
        return unpack_bits(self.packed[indices], self.spec.n_bits)

    @cached_property
    def _formula_index(self) -> dict[str, np.ndarray]:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, formula in enumerate(self.formulas):
            groups[formula].append(i)
        return {formula: np.asarray(rows, dtype=np.int64) for formula, rows in groups.items()}


class CandidateStore:
    """The candidates of the database in memory, for one fingerprint spec (the served model's).

    ``refresh`` picks up rows imported since the last call. Each refresh builds a new :class:`CandidateMatrix`
    and swaps it in, so a request that takes ``store.matrix`` once sees one consistent snapshot even while
    another thread refreshes. Rows stored with another spec get their fingerprint recomputed from SMILES once,
    when loaded.
    """

    def __init__(self, spec: FingerprintSpec | str) -> None:
        self.spec = parse_fingerprint_spec(spec)
        self.matrix = CandidateMatrix.empty(self.spec)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, session: Session, spec: FingerprintSpec | str) -> CandidateStore:
        """A store filled with every candidate of the database."""
        store = cls(spec)
        store.refresh(session)
        return store

    def __len__(self) -> int:
        return len(self.matrix)

    def by_mass(self, neutral_mass: float, ppm: float) -> np.ndarray:
        """See :meth:`CandidateMatrix.by_mass` (on the current snapshot)."""
        return self.matrix.by_mass(neutral_mass, ppm)

    def by_formula(self, formula: str) -> np.ndarray:
        """See :meth:`CandidateMatrix.by_formula` (on the current snapshot)."""
        return self.matrix.by_formula(formula)

    def refresh(self, session: Session) -> int:
        """Load the candidates added since the last refresh; returns the change in the number of candidates.

        When the database holds a different number of rows than the store afterwards (rows deleted, or
        committed out of id order by concurrent imports) everything is reloaded.
        """
        with self._lock:
            old = self.matrix
            last_id = int(old.ids.max()) if len(old) else 0
            new = self._read(session, Candidate.id > last_id)
            merged = _merge(old, new) if len(new) else old
            if session.scalar(select(func.count()).select_from(Candidate)) != len(merged):
                merged = self._read(session, None)
            self.matrix = merged
            return len(merged) - len(old)

    def _read(self, session: Session, where: ColumnElement[bool] | None) -> CandidateMatrix:
        query = select(
            Candidate.id,
            Candidate.monoisotopic_mass,
            Candidate.smiles,
            Candidate.inchikey,
            Candidate.formula,
            Candidate.fingerprint_spec,
            Candidate.fingerprint,
        ).order_by(Candidate.id)
        if where is not None:
            query = query.where(where)
        rows = session.execute(query).all()
        if not rows:
            return CandidateMatrix.empty(self.spec)
        ids, masses, smiles, inchikeys, formulas, specs, fingerprints = zip(*rows, strict=True)
        n_bytes = (self.spec.n_bits + 7) // 8
        packed = np.zeros((len(rows), n_bytes), dtype=np.uint8)
        own = np.array([s == self.spec.text for s in specs])
        if own.any():
            stored = b"".join(fp for fp, mine in zip(fingerprints, own, strict=True) if mine)
            packed[own] = np.frombuffer(stored, dtype=np.uint8).reshape(-1, n_bytes)
        if not own.all():
            others = [s for s, mine in zip(smiles, own, strict=True) if not mine]
            log.warning(
                "recomputing %d candidate fingerprints stored with another spec than %s", len(others), self.spec
            )
            packed[~own] = pack_bits(fingerprint_bits(others, self.spec))
        order = np.argsort(np.asarray(masses, dtype=np.float64), kind="stable")
        return CandidateMatrix(
            spec=self.spec,
            ids=np.asarray(ids, dtype=np.int64)[order],
            masses=np.asarray(masses, dtype=np.float64)[order],
            packed=packed[order],
            smiles=_strings(smiles)[order],
            inchikeys=_strings(inchikeys)[order],
            formulas=_strings(formulas)[order],
        )


def _strings(values: tuple[str, ...]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _merge(a: CandidateMatrix, b: CandidateMatrix) -> CandidateMatrix:
    """The union of two snapshots, sorted by mass."""
    masses = np.concatenate([a.masses, b.masses])
    order = np.argsort(masses, kind="stable")
    return CandidateMatrix(
        spec=a.spec,
        ids=np.concatenate([a.ids, b.ids])[order],
        masses=masses[order],
        packed=np.concatenate([a.packed, b.packed])[order],
        smiles=np.concatenate([a.smiles, b.smiles])[order],
        inchikeys=np.concatenate([a.inchikeys, b.inchikeys])[order],
        formulas=np.concatenate([a.formulas, b.formulas])[order],
    )


def candidates_in_mass_window(
    session: Session, neutral_mass: float, ppm: float, limit: int | None = None
) -> list[Candidate]:
    """Candidates whose monoisotopic mass is within ``ppm`` of ``neutral_mass``, by mass (an index range scan)."""
    low, high = ppm_window(neutral_mass, ppm)
    query = (
        select(Candidate)
        .where(Candidate.monoisotopic_mass.between(low, high))
        .order_by(Candidate.monoisotopic_mass, Candidate.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def candidates_with_formula(session: Session, formula: str, limit: int | None = None) -> list[Candidate]:
    """Candidates of molecular formula ``formula``, by mass (an index look-up)."""
    query = (
        select(Candidate)
        .where(Candidate.formula == formula.strip())
        .order_by(Candidate.monoisotopic_mass, Candidate.id)
        .limit(limit)
    )
    return list(session.scalars(query))
