"""The candidate store's packed string column against the list of strings it holds."""

from __future__ import annotations

import numpy as np
import pytest

from app.candidates.packed_strings import PackedStrings

# Real candidate strings, with the cases a byte buffer can get wrong: non-ASCII characters (more bytes than
# characters), an empty string, one of a single byte.
STRINGS = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "BSYNRYMUTXBXSQ-UHFFFAOYSA-N",
    "",
    "C",
    "Ärger-β-caroten",
    "OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O",
    "日本語",
]


def test_rows_read_back_as_given() -> None:
    column = PackedStrings.from_strings(STRINGS)
    assert len(column) == len(STRINGS)
    assert [column[i] for i in range(len(STRINGS))] == STRINGS
    assert list(column) == STRINGS
    assert column[-1] == STRINGS[-1] and column[np.int64(4)] == STRINGS[4]
    with pytest.raises(IndexError):
        column[len(STRINGS)]
    assert "C" in column and "N" not in column  # the Sequence methods, from the rows
    assert column.index("") == 2


def test_slices_and_index_arrays_are_views_of_the_same_rows() -> None:
    column = PackedStrings.from_strings(STRINGS)
    order = np.array([6, 0, 2, 2, 5])
    assert list(column[order]) == [STRINGS[i] for i in order]
    assert list(column[1:4]) == STRINGS[1:4]
    assert list(column[order][1:3]) == [STRINGS[0], STRINGS[2]]
    assert list(column[np.zeros(0, dtype=np.int64)]) == []
    assert column[order][0] == STRINGS[6]


def test_concatenate_shifts_each_column_into_the_joined_buffer() -> None:
    first = PackedStrings.from_strings(STRINGS[:4])
    second = PackedStrings.from_strings(STRINGS[4:])
    # as the store merges: snapshots re-ordered by mass, then the union re-ordered again
    a, b = first[np.array([3, 1, 0, 2])], second[::-1]
    joined = PackedStrings.concatenate([a, b])
    assert list(joined) == list(a) + list(b)
    order = np.array([6, 0, 4, 2])
    assert list(joined[order]) == [(list(a) + list(b))[i] for i in order]
    assert list(PackedStrings.concatenate([])) == []
    assert list(PackedStrings.concatenate([PackedStrings.from_strings([]), first])) == STRINGS[:4]


def test_a_row_costs_its_bytes_and_twelve_more() -> None:
    """The point of the column: no object per row (a str is ~49 bytes of header, and a pointer to it 8 more)."""
    smiles = [f"CC(C)C{'c1ccccc1' * (i % 5)}N" for i in range(10_000)]
    column = PackedStrings.from_strings(smiles)
    assert column.nbytes == sum(len(s) for s in smiles) + 12 * len(smiles)
    assert list(column) == smiles
