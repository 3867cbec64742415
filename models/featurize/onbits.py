"""Fingerprints as the positions of their set bits: the layout the candidate store keeps and ranks.

Real fingerprints are sparse (3.4% of the default spec's 2,215 bits are set, 75 per molecule), so the positions
of the set bits (int32, 4 bytes each: ~300 bytes a molecule) are about the size of the packed bits (277 bytes) but
let a score be a sum over those 75 positions instead of a pass over every byte: ranking ``N`` molecules reads
``75 N`` indices once (a sparse matrix-vector product), several times faster than per-byte lookup tables over
packed bits (``benchmarks/ranking.py``).

The layout is CSR without values: row ``i``'s bits are ``indices[indptr[i]:indptr[i + 1]]``, ascending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse

_CHUNK_ROWS = 65_536  # rows per sparse product: bounds the temporary index and value arrays
_ones = np.ones(0)  # shared read-only values for the sparse products, grown on demand
# For each byte value: which of its 8 bits are set (np.packbits order, most significant first), their positions
# 0-7 within the byte, and how many there are.
_BYTE_MASK = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(bool)
_BYTE_POSITIONS = np.tile(np.arange(8, dtype=np.int32), (256, 1))
_POPCOUNT = _BYTE_MASK.sum(axis=1)


def _ones_view(n: int) -> np.ndarray:
    """``n`` float64 ones, a view of one shared buffer (never written to), so a product allocates no values."""
    global _ones
    if len(_ones) < n:
        grown = np.ones(max(n, 2 * len(_ones)))
        grown.flags.writeable = False
        _ones = grown
    return _ones[:n]


@dataclass(frozen=True, eq=False)
class OnBits:
    """``len(indptr) - 1`` fingerprints of ``n_bits`` bits, as their set positions.

    ``indptr``: (N + 1,) int64, ascending, ``indptr[0] == 0`` after construction (a slice of a larger
    ``OnBits`` keeps its parent's offsets, see :meth:`__getitem__`); ``indices``: int32 bit positions.
    """

    indptr: np.ndarray
    indices: np.ndarray
    n_bits: int

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def nbytes(self) -> int:
        return self.indptr.nbytes + self.indices.nbytes

    @classmethod
    def empty(cls, n_bits: int) -> OnBits:
        return cls(np.zeros(1, np.int64), np.zeros(0, np.int32), n_bits)

    @classmethod
    def from_dense(cls, bits: np.ndarray) -> OnBits:
        """From (N, n_bits) 0/1 bits."""
        bits = np.asarray(bits)
        if bits.ndim != 2:
            raise ValueError(f"fingerprint bits must be 2-D (N, bits), got shape {bits.shape}")
        n, n_bits = bits.shape
        # flat positions in a 1-D array: 10-20x faster than np.nonzero of the 2-D array
        flat = np.flatnonzero(np.ascontiguousarray(bits).ravel())
        indptr = np.searchsorted(flat, np.arange(n + 1, dtype=np.int64) * n_bits).astype(np.int64)
        return cls(indptr, (flat % n_bits).astype(np.int32), n_bits)

    @classmethod
    def from_rows(cls, rows: Sequence[np.ndarray], n_bits: int) -> OnBits:
        """From each fingerprint's set positions (ascending integer arrays)."""
        indptr = np.zeros(len(rows) + 1, np.int64)
        np.cumsum([len(r) for r in rows], out=indptr[1:])
        indices = np.concatenate(rows).astype(np.int32, copy=False) if rows else np.zeros(0, np.int32)
        return cls(indptr, indices, n_bits)

    @classmethod
    def from_packed(cls, packed: np.ndarray, n_bits: int) -> OnBits:
        """From (N, ceil(n_bits / 8)) bytes in ``np.packbits`` order (``pack_bits``).

        Works byte by byte on the non-zero bytes only (a quarter of them in real fingerprints), each expanded
        through a table of its set positions: 4-5x less work than unpacking every bit first.
        """
        packed = np.ascontiguousarray(packed, dtype=np.uint8)
        if packed.ndim != 2 or packed.shape[1] != (n_bits + 7) // 8:
            raise ValueError(f"packed bits of shape {packed.shape} do not hold (N, {n_bits}) bits")
        n, n_bytes = packed.shape
        flat = packed.ravel()
        nonzero = np.flatnonzero(flat)
        values = flat[nonzero]
        # the set positions of each non-zero byte: 8 candidate positions per byte, of which the table keeps those set
        positions = _BYTE_POSITIONS[values]
        positions += (nonzero % n_bytes * 8).astype(np.int32)[:, None]
        indices = positions[_BYTE_MASK[values]]
        per_byte = np.zeros(len(nonzero) + 1, np.int64)
        np.cumsum(_POPCOUNT[values], out=per_byte[1:])
        indptr = per_byte[np.searchsorted(nonzero, np.arange(n + 1, dtype=np.int64) * n_bytes)]
        return cls(indptr, indices, n_bits)

    @classmethod
    def concatenate(cls, parts: Sequence[OnBits]) -> OnBits:
        """The rows of ``parts`` one after the other (all of one ``n_bits``)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        n_bits = parts[0].n_bits
        if any(p.n_bits != n_bits for p in parts):
            raise ValueError("cannot concatenate fingerprints of different lengths")
        indptr = [np.zeros(1, np.int64)]
        indices = []
        total = 0
        for part in parts:
            start, stop = part.indptr[0], part.indptr[-1]
            indptr.append(part.indptr[1:] - start + total)
            indices.append(part.indices[start:stop])
            total += stop - start
        return cls(np.concatenate(indptr), np.concatenate(indices), n_bits)

    def __getitem__(self, rows: slice | np.ndarray) -> OnBits:
        """The fingerprints at ``rows``: a step-1 slice is a view (no copy), an index array a gathered copy."""
        if isinstance(rows, slice) and rows.step in (None, 1):
            start, stop, _ = rows.indices(len(self))
            return OnBits(self.indptr[start : max(start, stop) + 1], self.indices, self.n_bits)
        rows = np.arange(len(self))[rows] if isinstance(rows, slice) else np.asarray(rows, dtype=np.intp)
        if len(rows) > _CHUNK_ROWS:  # in pieces, so the temporary source positions stay small
            return OnBits.concatenate([self[rows[i : i + _CHUNK_ROWS]] for i in range(0, len(rows), _CHUNK_ROWS)])
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        indptr = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # position k of the output comes from starts[row] + (k - indptr[row]) of the input
        source = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return OnBits(indptr, self.indices[source], self.n_bits)

    def row(self, i: int) -> np.ndarray:
        """The set positions of fingerprint ``i`` (int32, ascending)."""
        return self.indices[self.indptr[i] : self.indptr[i + 1]]

    def to_dense(self) -> np.ndarray:
        """(N, n_bits) 0/1 uint8."""
        out = np.zeros((len(self), self.n_bits), np.uint8)
        lengths = np.diff(self.indptr)
        out[np.repeat(np.arange(len(self)), lengths), self.indices[self.indptr[0] : self.indptr[-1]]] = 1
        return out

    def to_packed(self) -> np.ndarray:
        """(N, ceil(n_bits / 8)) bytes in ``np.packbits`` order."""
        return np.packbits(self.to_dense(), axis=1)

    def dot(self, weights: np.ndarray) -> np.ndarray:
        """(N,) float64: for each fingerprint, the sum of ``weights`` (n_bits,) over its set bits."""
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (self.n_bits,):
            raise ValueError(f"weights of shape {weights.shape} for {self.n_bits}-bit fingerprints")
        out = np.empty(len(self))
        for first in range(0, len(self), _CHUNK_ROWS):
            last = min(first + _CHUNK_ROWS, len(self))
            start, stop = self.indptr[first], self.indptr[last]
            # int32 offsets and indices: scipy's fast path (int64 offsets would make it copy the indices)
            offsets = (self.indptr[first : last + 1] - start).astype(np.int32)
            matrix = scipy.sparse.csr_matrix(
                (_ones_view(int(stop - start)), self.indices[start:stop], offsets),
                shape=(last - first, self.n_bits),
                copy=False,
            )
            out[first:last] = matrix @ weights
        return out
