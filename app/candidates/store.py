"""Candidate look-ups for ranking: an in-memory fingerprint matrix sorted by mass, and indexed database queries
for the HTTP listing.

The ranking never touches SMILES at query time: :class:`CandidateStore` keeps every candidate's packed fingerprint,
mass and formula in arrays, and its SMILES and InChIKey packed (:mod:`~app.candidates.packed_strings`); a mass
window is two binary searches, and only the window's fingerprints are turned into set positions
(:class:`~models.featurize.onbits.OnBits`) to be ranked. A search over the whole store uses all of them as set
positions, made once on first use.

Loading reads the table with the database driver's own cursor, in chunks (no ORM rows), and keeps the packed bytes
as they are stored: converting millions of fingerprints at start would set how long the service takes to start.
While it reads, Python's cyclic garbage collector is paused: the driver makes a tuple per row, and every few
thousand of them the collector would walk all the tuples still alive (a third of the load time at 1.9M rows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.candidates.packed_strings import PackedStrings
from app.db import Candidate
from models.featurize.adducts import ppm_window
from models.featurize.fingerprints import FingerprintSpec, fingerprint_bits, pack_bits, parse_fingerprint_spec
from models.featurize.onbits import OnBits

log = logging.getLogger(__name__)

_FETCH_ROWS = 50_000  # rows per fetch while loading: bounds the driver's and the chunk's memory


@dataclass(frozen=True, eq=False)
class CandidateMatrix:
    """An immutable snapshot of the candidates, sorted by monoisotopic mass.

    Row ``i`` of every array is the same molecule; ``packed`` holds the fingerprints of ``spec`` (``np.packbits``
    order, (N, ceil(n_bits / 8)) uint8). SMILES and InChIKeys are packed (:class:`PackedStrings`: a string object
    for a row only when it is read); formulas are shared string objects (one per distinct formula).
    """

    spec: FingerprintSpec
    ids: np.ndarray  # database ids (int64)
    masses: np.ndarray  # float64, ascending
    packed: np.ndarray
    smiles: PackedStrings  # both take index arrays and slices as views
    inchikeys: PackedStrings
    formulas: np.ndarray  # object array of str

    @classmethod
    def empty(cls, spec: FingerprintSpec) -> CandidateMatrix:
        n_bytes = (spec.n_bits + 7) // 8
        none = PackedStrings.from_strings([])
        return cls(spec, np.empty(0, np.int64), np.empty(0), np.empty((0, n_bytes), np.uint8), none, none, _strings([]))

    def __len__(self) -> int:
        return len(self.ids)

    def bits_at(self, rows: slice | np.ndarray) -> OnBits:
        """The fingerprints of ``rows`` (a slice or index array) as set positions, the layout of :attr:`bits` (a mass
        window is ranked from its packed bytes, ``packed[rows]``)."""
        return OnBits.from_packed(self.packed[rows], self.spec.n_bits)

    @cached_property
    def bits(self) -> OnBits:
        """Every fingerprint as set positions (made on first use, a chunk of rows at a time), for searches over
        the whole store."""
        chunks = [self.bits_at(slice(i, i + _FETCH_ROWS)) for i in range(0, len(self), _FETCH_ROWS)]
        return OnBits.concatenate(chunks) if chunks else OnBits.empty(self.spec.n_bits)

    def mass_slice(self, neutral_mass: float, ppm: float) -> slice:
        """The rows whose monoisotopic mass is within ``ppm`` of ``neutral_mass``: a slice, as rows are by mass."""
        low, high = ppm_window(neutral_mass, ppm)
        start = int(np.searchsorted(self.masses, low, side="left"))
        stop = int(np.searchsorted(self.masses, high, side="right"))
        return slice(start, stop)

    def by_mass(self, neutral_mass: float, ppm: float) -> np.ndarray:
        """Indices of the candidates whose monoisotopic mass is within ``ppm`` of ``neutral_mass`` (ascending mass)."""
        window = self.mass_slice(neutral_mass, ppm)
        return np.arange(window.start, window.stop)

    def by_formula(self, formula: str) -> np.ndarray:
        """Indices of the candidates with molecular formula ``formula`` (as RDKit writes it, e.g. ``C6H12O6``),
        ascending."""
        codes, order, starts = self._formula_groups
        code = codes.get(formula.strip())
        if code is None:
            return np.empty(0, dtype=np.int64)
        return order[starts[code] : starts[code + 1]]

    @cached_property
    def _formula_groups(self) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
        """(code of each distinct formula, rows ordered by formula code then row, where each code's rows start)."""
        codes: dict[str, int] = {}
        row_codes = np.fromiter((codes.setdefault(f, len(codes)) for f in self.formulas), np.int64, len(self))
        order = np.argsort(row_codes, kind="stable")
        starts = np.searchsorted(row_codes[order], np.arange(len(codes) + 1))
        return codes, order, starts


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

    def refresh(self, session: Session, recount: bool = True) -> int:
        """Load the candidates added since the last refresh; returns the change in the number of candidates.

        When the database holds a different number of rows than the store afterwards (rows deleted, or
        committed out of id order by concurrent imports) everything is reloaded. Counting the rows is a scan of
        the table or an index (0.1 s for 1.9M rows on PostgreSQL, 0.02 s on SQLite), so a frequent poll passes
        ``recount=False``: the rows are then counted only when new ones were read, and a deletion or a late
        commit of lower ids waits for the next refresh that counts.
        """
        with self._lock:
            old = self.matrix
            last_id = int(old.ids.max()) if len(old) else 0
            new = self._read(session, last_id)
            merged = old if not len(new) else new if not len(old) else _merge(old, new)
            if (recount or len(new)) and session.scalar(select(func.count()).select_from(Candidate)) != len(merged):
                merged = self._read(session, 0)
            self.matrix = merged
            change = len(merged) - len(old)
            reread = merged is not old
        del old, new  # the replaced snapshot's arrays go now, unless a request still ranks against it
        if reread:
            release_freed_memory()
        return change

    def _read(self, session: Session, after_id: int) -> CandidateMatrix:
        """The candidates with an id above ``after_id``, sorted by mass (the garbage collector paused meanwhile)."""
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._read_rows(session, after_id)
        finally:
            if paused:
                gc.enable()

    def _read_rows(self, session: Session, after_id: int) -> CandidateMatrix:
        interned: dict[str, str] = {}  # one object per distinct formula: ~10x fewer strings in memory
        chunks = [self._chunk(rows, True, interned) for rows in _fetch(session, after_id, self.spec.text, own=True)]
        others = [self._chunk(rows, False, interned) for rows in _fetch(session, after_id, self.spec.text, own=False)]
        if others:
            log.warning(
                "recomputed %d candidate fingerprints stored with another spec than %s",
                sum(len(c[0]) for c in others),
                self.spec,
            )
        chunks += others
        if not chunks:
            return CandidateMatrix.empty(self.spec)
        ids, masses, smiles, inchikeys, formulas, packed = (list(column) for column in zip(*chunks, strict=True))
        masses = np.concatenate(masses)
        order = np.argsort(masses, kind="stable")
        return CandidateMatrix(
            spec=self.spec,
            ids=np.concatenate(ids)[order],
            masses=masses[order],
            packed=np.concatenate(packed)[order],
            smiles=PackedStrings.concatenate(smiles)[order],
            inchikeys=PackedStrings.concatenate(inchikeys)[order],
            formulas=np.concatenate(formulas)[order],
        )

    def _chunk(self, rows: list[tuple[Any, ...]], own: bool, interned: dict[str, str]) -> tuple[Any, ...]:
        """Column arrays of fetched rows (id, mass, smiles, inchikey, formula, fingerprint), the fingerprints
        packed; ``own``: the fingerprints are of this store's spec, else they are computed from the SMILES;
        formulas are replaced by their first occurrence in ``interned``."""
        ids, masses, smiles, inchikeys, formulas, fingerprints = zip(*rows, strict=True)
        if own:
            packed = np.frombuffer(b"".join(fingerprints), dtype=np.uint8).reshape(len(rows), -1)
        else:
            packed = pack_bits(fingerprint_bits(list(smiles), self.spec))
        return (
            np.asarray(ids, dtype=np.int64),
            np.asarray(masses, dtype=np.float64),
            PackedStrings.from_strings(smiles),
            PackedStrings.from_strings(inchikeys),
            _strings(list(map(interned.setdefault, formulas, formulas))),
            packed,
        )


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (None where the C library has none: musl, macOS)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Hand the free pages of the C heap back to the operating system.

    A load makes hundreds of MB of short-lived row tuples, strings and chunk arrays. glibc gives back only the
    free space at the top of its heap, so the rest stayed resident for the server's lifetime (270 of 870 MB at
    1.9M candidates, in every ``--workers`` process); ``malloc_trim`` returns every free page (20 ms there).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _fetch(session: Session, after_id: int, spec: str, own: bool) -> Iterator[list[tuple[Any, ...]]]:
    """Rows (id, mass, smiles, inchikey, formula, fingerprint) with id above ``after_id`` whose fingerprint spec
    is (``own``) or is not ``spec``, in lists of up to ``_FETCH_ROWS``, from the driver's cursor (no ORM rows;
    a server-side cursor on PostgreSQL, so the result is never held whole)."""
    dialect = session.get_bind().dialect.name
    mark = "?" if dialect == "sqlite" else "%s"
    sql = (
        "SELECT id, monoisotopic_mass, smiles, inchikey, formula, fingerprint FROM candidates "
        f"WHERE id > {mark} AND fingerprint_spec {'=' if own else '<>'} {mark} ORDER BY id"
    )
    raw = session.connection().connection.driver_connection
    cursor = raw.cursor(name="msvae_candidates") if dialect == "postgresql" else raw.cursor()
    try:
        cursor.execute(sql, (after_id, spec))
        while rows := cursor.fetchmany(_FETCH_ROWS):
            yield rows
    finally:
        cursor.close()


def _strings(values: tuple[str, ...] | list[str]) -> np.ndarray:
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
        smiles=PackedStrings.concatenate([a.smiles, b.smiles])[order],
        inchikeys=PackedStrings.concatenate([a.inchikeys, b.inchikeys])[order],
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
