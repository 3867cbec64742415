"""A column of strings held as one UTF-8 buffer and two small arrays, for the candidate store's SMILES and InChIKeys.

A Python ``str`` costs ~49 bytes of object header besides its characters, and an object array another 8 bytes a
row for the pointer: at 1.9M candidates the SMILES and InChIKey objects were over a third of the server's resident
memory, held once per ``--workers`` process. Here a row costs its UTF-8 bytes plus 12 (start, length); a string
object is made only when a row is read (the few ranked candidates of a response).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import numpy as np


class PackedStrings(Sequence[str]):
    """An immutable sequence of strings: ``buffer`` holds their UTF-8 bytes, row ``i`` is
    ``buffer[starts[i] : starts[i] + lengths[i]]``. Indexing by a slice or an index array gives a view that shares
    the buffer (a mass window of the store, or the store re-ordered by mass), as an object array would."""

    __slots__ = ("_buffer", "_lengths", "_starts")

    def __init__(self, buffer: bytes, starts: np.ndarray, lengths: np.ndarray) -> None:
        if starts.shape != lengths.shape or starts.ndim != 1:
            raise ValueError(f"starts {starts.shape} and lengths {lengths.shape} must be one row each")
        self._buffer = buffer
        self._starts = starts
        self._lengths = lengths

    @classmethod
    def from_strings(cls, values: Iterable[str]) -> PackedStrings:
        """The strings of ``values``, in order."""
        encoded = [value.encode() for value in values]
        lengths = np.fromiter(map(len, encoded), dtype=np.int32, count=len(encoded))
        starts = np.zeros(len(encoded), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        return cls(b"".join(encoded), starts, lengths)

    @classmethod
    def concatenate(cls, columns: Sequence[PackedStrings]) -> PackedStrings:
        """The rows of ``columns``, one after the other. Their buffers are joined whole: meant for columns whose
        rows cover their buffer (the store's snapshots, in any order), not for small views of a large one."""
        shifts = np.cumsum([0, *(len(column._buffer) for column in columns)], dtype=np.int64)[:-1]
        return cls(
            b"".join(column._buffer for column in columns),
            np.concatenate(
                [np.zeros(0, np.int64)] + [c._starts + shift for c, shift in zip(columns, shifts, strict=True)]
            ),
            np.concatenate([np.zeros(0, np.int32)] + [column._lengths for column in columns]),
        )

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, key: int) -> str: ...

    @overload
    def __getitem__(self, key: slice | np.ndarray) -> PackedStrings: ...

    def __getitem__(self, key: int | slice | np.ndarray) -> str | PackedStrings:
        if isinstance(key, (int, np.integer)):
            start = int(self._starts[key])  # IndexError beyond the rows, as a list
            return self._buffer[start : start + int(self._lengths[key])].decode()
        return PackedStrings(self._buffer, self._starts[key], self._lengths[key])

    def __iter__(self) -> Iterator[str]:
        buffer = self._buffer
        for start, length in zip(self._starts.tolist(), self._lengths.tolist(), strict=True):
            yield buffer[start : start + length].decode()

    def __repr__(self) -> str:
        shown = ", ".join(repr(s) for s in self[:3])
        return f"PackedStrings([{shown}{', ...' if len(self) > 3 else ''}], {len(self)} rows)"

    @property
    def nbytes(self) -> int:
        """The memory of the buffer and of this view's row arrays."""
        return len(self._buffer) + self._starts.nbytes + self._lengths.nbytes
