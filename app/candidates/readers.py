"""Reading candidate molecules from SMILES lists, TSV/CSV tables, SDF and MGF headers.

Each reader turns a text stream into :class:`Entry` items: a SMILES to featurize, or the reason the record is
unusable, with the 1-based line where the record starts so users can find it.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import IO

from rdkit import Chem, rdBase

from models.featurize.mgf import SpectrumError, read_spectra

_EXTENSIONS = {
    ".smi": "smiles",
    ".smiles": "smiles",
    ".ism": "smiles",
    ".can": "smiles",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".csv": "tsv",
    ".sdf": "sdf",
    ".sd": "sdf",
    ".mol": "sdf",
    ".mgf": "mgf",
}
# C0 control characters other than tab, LF, CR: binary data, not text.
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEAD_CHARS = 65536


class CandidateFileError(ValueError):
    """The input as a whole cannot be read (binary data, no ``smiles`` column, unknown format)."""


@dataclass(frozen=True)
class Entry:
    """One record of a candidate file: a SMILES (and optional name), or why there is none.

    ``line`` is where the record starts or its problem is (1-based; None when the reader cannot tell);
    ``record`` numbers SDF records (1-based) and MGF spectra (0-based index, as in the annotation errors);
    ``label`` names the record in messages ("record 3", "spectrum 0 (TITLE='x')").
    """

    line: int | None
    smiles: str | None = None
    name: str | None = None
    error: str | None = None
    record: int | None = None
    label: str | None = None


def open_text(data: str | bytes | PathLike[str]) -> IO[str]:
    """A text stream over ``data``: a path (plain or gzip) is opened, ``bytes`` and ``str`` are the content
    itself (a ``str`` is never taken for a path, so uploaded text cannot name a server file)."""
    if isinstance(data, str):
        return io.StringIO(data.removeprefix("\ufeff"))
    raw: IO[bytes] = open(data, "rb") if isinstance(data, PathLike) else io.BytesIO(data)  # noqa: SIM115
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        raw = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
    else:
        raw.seek(0)
    # Invalid UTF-8 becomes U+FFFD, so the record holding it is rejected by line instead of the whole file.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


def guess_format(head: str, filename: str | None = None) -> str:
    """The format by file extension (``.gz`` ignored), else from the first characters of the content."""
    if filename:
        suffix = Path(filename.lower().removesuffix(".gz")).suffix
        if suffix in _EXTENSIONS:
            return _EXTENSIONS[suffix]
    if re.search(r"^\s*BEGIN IONS\s*$", head, re.MULTILINE):
        return "mgf"
    if re.search(r"^\$\$\$\$\s*$|^M  END\s*$|V[23]000\s*$", head, re.MULTILINE):
        return "sdf"
    first = next((line for line in head.splitlines() if line.strip() and not line.startswith("#")), "")
    if ("\t" in first or "," in first) and "smiles" in _header_cells(first):
        return "tsv"
    return "smiles"


@contextmanager
def open_entries(
    data: str | bytes | PathLike[str], fmt: str | None = None, filename: str | None = None
) -> Iterator[tuple[str, Iterator[Entry]]]:
    """``(format, entries)`` of ``data`` (see :func:`open_text`); ``fmt`` None guesses it (:func:`guess_format`,
    from ``filename`` or the path's name). Raises :class:`CandidateFileError` for binary data or an unknown format.
    """
    if filename is None and isinstance(data, PathLike):
        filename = Path(data).name
    with open_text(data) as stream:
        head = stream.read(_HEAD_CHARS)
        stream.seek(0)
        if _BINARY.search(head):
            raise CandidateFileError("the input is binary data, not a text file")
        fmt = fmt or guess_format(head, filename)
        if fmt not in _READERS:
            raise CandidateFileError(f"unknown candidate format {fmt!r}; use one of {', '.join(_READERS)}")
        yield fmt, _READERS[fmt](stream)


def _header_cells(line: str) -> list[str]:
    delimiter = "\t" if "\t" in line else ","
    return [cell.strip().strip('"').lower() for cell in line.split(delimiter)]


def _smiles_lines(stream: IO[str]) -> Iterator[Entry]:
    """``SMILES [name]`` per line; blank lines and ``#`` comments skipped; a first line ``smiles ...`` is a header."""
    first = True
    for number, line in enumerate(stream, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split(None, 1)
        if first and parts[0].lower() == "smiles":
            first = False
            continue
        first = False
        yield Entry(number, smiles=parts[0], name=parts[1].strip() if len(parts) > 1 else None)


def _table_rows(stream: IO[str]) -> Iterator[Entry]:
    """A tab- or comma-separated table with a ``smiles`` column (any case) and optionally ``name``."""
    skipped = 0
    header_line = ""
    for header_line in stream:
        if header_line.strip() and not header_line.startswith("#"):
            break
        skipped += 1
    cells = _header_cells(header_line)
    if "smiles" not in cells:
        raise CandidateFileError(f"line {skipped + 1}: the header has no 'smiles' column: {header_line.strip()[:80]!r}")
    smiles_col = cells.index("smiles")
    name_col = cells.index("name") if "name" in cells else None
    reader = csv.reader(stream, delimiter="\t" if "\t" in header_line else ",")
    offset = skipped + 1  # reader.line_num counts from the line after the header
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Entry(offset + reader.line_num, error=f"unreadable row: {exc}")
            continue
        number = offset + reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        smiles = row[smiles_col].strip() if smiles_col < len(row) else ""
        if not smiles:
            yield Entry(number, error="empty smiles cell")
            continue
        name = row[name_col].strip() if name_col is not None and name_col < len(row) else ""
        yield Entry(number, smiles=smiles, name=name or None)


def _sdf_records(stream: IO[str]) -> Iterator[Entry]:
    """SD records separated by ``$$$$`` lines, each molfile parsed by RDKit; the record title is the name."""
    lines: list[str] = []
    start = 1
    record = 0
    for number, line in enumerate(stream, start=1):
        if line.rstrip("\r\n") == "$$$$":
            record += 1
            yield _sdf_entry(lines, start, record)
            lines, start = [], number + 1
        else:
            lines.append(line)
    if any(line.strip() for line in lines):  # a last record without its $$$$
        yield _sdf_entry(lines, start, record + 1)


def _sdf_entry(lines: list[str], start: int, record: int) -> Entry:
    block = "".join(lines)
    with rdBase.BlockLogs():  # the reason goes into the report, not onto stderr
        mol = Chem.MolFromMolBlock(block) if "M  END" in block else None
    label = f"record {record}"
    if mol is None or mol.GetNumAtoms() == 0:
        return Entry(start, error="RDKit cannot read this molfile", record=record, label=label)
    name = lines[0].strip() if lines else ""
    return Entry(start, smiles=Chem.MolToSmiles(mol), name=name or None, record=record, label=label)


def _mgf_headers(stream: IO[str]) -> Iterator[Entry]:
    """The ``SMILES=`` header of each MGF spectrum (peaks and precursor are not needed for a candidate)."""
    for item in read_spectra(stream, format="mgf", require_precursor=False):
        if item.index is None and item.line is None:
            raise CandidateFileError(item.reason)  # no spectra at all
        label = f"spectrum {item.index} (TITLE={item.title!r})" if item.index is not None else None
        if isinstance(item, SpectrumError):
            yield Entry(item.line, error=item.reason, record=item.index, label=label)
        elif item.smiles is None:
            yield Entry(None, error="no SMILES header", record=item.index, label=label)
        else:
            yield Entry(None, smiles=item.smiles, name=item.title or None, record=item.index, label=label)


# What starts (or ends) one record of each format, for counting records without parsing them.
_RECORD_MARKS = {"smiles": b"\n", "tsv": b"\n", "sdf": b"$$$$", "mgf": b"BEGIN IONS"}


def count_records(path: str | PathLike[str], fmt: str | None = None) -> int:
    """About how many records the file at ``path`` (plain or gzip) holds: its lines for SMILES lists and tables
    (headers and blank lines included), ``$$$$`` for SDF, ``BEGIN IONS`` for MGF. A byte count, fast enough to
    size a progress bar before an import (a second or two per million lines)."""
    path = Path(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
    if fmt is None:
        with open_entries(path) as (found, _):
            fmt = found
    mark = _RECORD_MARKS[fmt]
    count, tail = 0, b""
    with gzip.open(path, "rb") if compressed else open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            data = tail + block
            count += data.count(mark)
            # keep what could be the start of a mark split between blocks (too short to hold a whole one)
            tail = data[-(len(mark) - 1) :] if len(mark) > 1 else b""
    return count


_READERS = {"smiles": _smiles_lines, "tsv": _table_rows, "sdf": _sdf_records, "mgf": _mgf_headers}
FORMATS = tuple(_READERS)
