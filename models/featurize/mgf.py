"""Reading MS/MS spectra: MGF and MSP files (plain or gzip) and the HTTP API's JSON form, with per-spectrum errors.

Every spectrum goes through one validation function (:func:`make_spectrum`), whichever form it came in. A bad
spectrum becomes a :class:`SpectrumError` that names it (0-based index in the input, ``TITLE``) and the 1-based
line of the problem; in the default non-strict mode it is yielded in place of the spectrum and reading goes on with
the next one, so nothing acceptable is lost. ``strict=True`` raises the first error instead.

Why not ``pyteomics.mgf`` (5.0): it reports no line numbers, stops the whole file at the first unparsable peak line
or missing ``END IONS``, and yields None for a block cut off by the end of the file. MGF is a line format simple
enough to split and check here (the tests hold this reader against pyteomics on MassBank); pyteomics has no MSP
reader, so MSP (NIST / MoNA style) is parsed here too.
"""

from __future__ import annotations

import gzip
import io
import itertools
import math
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

# Far above any small-molecule or peptide MS/MS m/z; a larger value is a corrupt number, not a peak.
MAX_MZ = 100_000.0
_COMMENT_CHARS = "#;!/"
# C0 control characters other than tab, LF, CR: their presence marks binary data, not text.
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CHARGE = re.compile(r"^([+-]?)(\d+)([+-]?)$")
_MISSING_VALUES = {"", "n/a", "na", "none", "null"}


@dataclass(eq=False)
class Spectrum:
    """One MS/MS spectrum.

    Attributes:
        index: 0-based position in its input (counting every spectrum block, rejected ones included).
        title: the ``TITLE`` header ("" when absent).
        precursor_mz: the precursor m/z (``PEPMASS``); None only when read with ``require_precursor=False``.
        charge: signed precursor charge (``CHARGE=2+`` -> 2), None when absent.
        mz, intensity: the peaks (float64, same length, in file order).
        params: every header of the spectrum, lower-case keys, values as written (file-wide MGF headers included).
    """

    index: int
    title: str
    precursor_mz: float | None
    charge: int | None
    mz: np.ndarray
    intensity: np.ndarray
    params: dict[str, str] = field(default_factory=dict)

    def _param(self, key: str) -> str | None:
        value = self.params.get(key)
        return None if value is None or value.strip().lower() in _MISSING_VALUES else value.strip()

    @property
    def smiles(self) -> str | None:
        return self._param("smiles")

    @property
    def inchikey(self) -> str | None:
        return self._param("inchikey")

    @property
    def formula(self) -> str | None:
        return self._param("formula")

    @property
    def adduct(self) -> str | None:
        return self._param("adduct")

    @property
    def n_peaks(self) -> int:
        return len(self.mz)


class SpectrumError(ValueError):
    """A spectrum (or a stretch of input) that cannot be used, with where and why.

    ``index`` is the spectrum's 0-based position in the input, or None for text that belongs to no spectrum
    (stray lines between blocks, an input without any spectrum); ``line`` is 1-based, None for JSON input.
    """

    def __init__(self, reason: str, *, index: int | None = None, title: str | None = None, line: int | None = None):
        self.reason = reason
        self.index = index
        self.title = title
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.index is not None:
            where.append(f"spectrum {self.index}")
        if self.title:
            where.append(f"TITLE={self.title!r}")
        elif self.index is not None:
            where.append("no TITLE")
        if self.line is not None:
            where.append(f"line {self.line}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def __reduce__(self):  # picklable with its fields (worker processes, job queues)
        return (self.__class__, (self.reason,), {"index": self.index, "title": self.title, "line": self.line})

    def to_dict(self) -> dict[str, Any]:
        """JSON form for reports and HTTP responses."""
        return {"index": self.index, "title": self.title, "line": self.line, "reason": self.reason}


def parse_charge(text: str) -> int:
    """``1+`` / ``+1`` / ``2-`` / ``3`` -> signed int (only the first of ``2+ and 3+``); ValueError otherwise."""
    first = text.strip().split(" and ")[0].split(",")[0].strip()
    m = _CHARGE.match(first)
    if not m or (m.group(1) and m.group(3)):
        raise ValueError(f"CHARGE {text!r} is not a charge such as 1+ or 2-")
    value = int(m.group(2))
    return -value if "-" in (m.group(1) + m.group(3)) else value


def make_spectrum(
    index: int,
    params: dict[str, str],
    mz: np.ndarray,
    intensity: np.ndarray,
    *,
    line: int | None = None,
    header_lines: dict[str, int] | None = None,
    peak_lines: np.ndarray | None = None,
    require_precursor: bool = True,
) -> Spectrum:
    """Check one spectrum and build it; raise :class:`SpectrumError` naming what is wrong.

    Args:
        index, params: the spectrum's position and headers (lower-case keys; ``pepmass`` holds the precursor).
        mz, intensity: peak arrays (float64).
        line: where the spectrum starts (used for spectrum-level problems such as a missing PEPMASS).
        header_lines: line of each header, so a bad header is reported at its own line.
        peak_lines: line of each peak, so a bad peak is reported at its own line.
        require_precursor: reject spectra without a precursor m/z (the service needs it for candidate search).
    """
    title = params.get("title", "").strip()
    header_lines = header_lines or {}

    def fail(reason: str, at: int | None = line) -> SpectrumError:
        return SpectrumError(reason, index=index, title=title, line=at)

    precursor: float | None = None
    pepmass = params.get("pepmass", "").strip()
    if pepmass:
        token = pepmass.split()[0]
        at = header_lines.get("pepmass", line)
        try:
            precursor = float(token)
        except ValueError:
            raise fail(f"precursor m/z (PEPMASS) {token!r} is not a number", at) from None
        if not (math.isfinite(precursor) and 0 < precursor <= MAX_MZ):
            raise fail(f"precursor m/z (PEPMASS) {token} is outside (0, {MAX_MZ:g}]", at)
    elif require_precursor:
        raise fail("no precursor m/z (PEPMASS)")

    charge: int | None = None
    if params.get("charge", "").strip():
        try:
            charge = parse_charge(params["charge"])
        except ValueError as exc:
            raise fail(str(exc), header_lines.get("charge", line)) from None

    if len(mz) == 0:
        raise fail("no peaks")
    bad = ~(np.isfinite(mz) & (mz > 0) & (mz <= MAX_MZ))
    if bad.any():
        k = int(np.argmax(bad))
        at = int(peak_lines[k]) if peak_lines is not None else line
        raise fail(f"peak {k}: m/z {mz[k]:g} is outside (0, {MAX_MZ:g}]", at)
    bad = ~(np.isfinite(intensity) & (intensity >= 0))
    if bad.any():
        k = int(np.argmax(bad))
        at = int(peak_lines[k]) if peak_lines is not None else line
        raise fail(f"peak {k}: intensity {intensity[k]:g} is negative or not finite", at)
    return Spectrum(index, title, precursor, charge, mz, intensity, dict(params))


# --- input handling -------------------------------------------------------------------------------------------


def _open_binary(source: str | Path | IO) -> tuple[IO[bytes] | IO[str], bool]:
    """(stream, must_close); gzip detected by its magic bytes, not by the file name."""
    if isinstance(source, str | Path):
        raw = open(source, "rb")  # noqa: SIM115 -- closed by the caller
        if raw.peek(2)[:2] == b"\x1f\x8b":
            return io.BufferedReader(gzip.GzipFile(fileobj=raw)), True  # buffered: fast readline
        return raw, True
    if isinstance(source, io.TextIOBase):
        return source, False
    if hasattr(source, "peek"):
        head = source.peek(2)[:2]
    elif source.seekable():
        pos = source.tell()
        head = source.read(2)
        source.seek(pos)
    else:  # an unseekable binary stream: read it whole to look at its start
        source = io.BytesIO(source.read())
        head = source.getvalue()[:2]
    if head == b"\x1f\x8b":
        return io.BufferedReader(gzip.GzipFile(fileobj=source)), False
    return source, False


EMPTY_INPUT = "no spectra: the input is empty"


def _text_lines(stream: IO[bytes] | IO[str], failure: list[SpectrumError]) -> Iterator[tuple[int, str | None]]:
    """(line number, text without line end) per line; text None for a line of binary data. A read failure
    (corrupt or cut gzip stream) ends the lines and is kept in ``failure``."""
    number = 0
    try:
        for number, raw in enumerate(stream, start=1):  # noqa: B007 -- number is kept for the error below
            if isinstance(raw, bytes):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text = raw.decode("latin-1")  # legacy text files; binary data is caught below
            else:
                text = raw
            if number == 1:
                text = text.lstrip("\ufeff")
            text = text.rstrip("\r\n")
            yield number, (None if _BINARY.search(text) else text)
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: corrupt deflate data inside a gzip stream
        failure.append(SpectrumError(f"cannot read the input after line {number}: {exc}", line=number + 1))


def _parse_peak(text: str) -> tuple[float, float]:
    parts = text.split()
    if len(parts) < 2:
        raise ValueError
    return float(parts[0]), float(parts[1])


def _peak_arrays(peaks: list[tuple[float, float]], lines: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = np.array(peaks, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0].copy(), arr[:, 1].copy(), np.array(lines, dtype=np.int64)


# --- MGF ------------------------------------------------------------------------------------------------------


class _Block:
    """A ``BEGIN IONS`` block being read."""

    def __init__(self, index: int, line: int, defaults: dict[str, str]):
        self.index = index
        self.line = line
        self.params: dict[str, str] = dict(defaults)
        self.header_lines: dict[str, int] = {}
        self.peaks: list[tuple[float, float]] = []
        self.peak_lines: list[int] = []
        self.error: tuple[str, int] | None = None  # the first problem met: (reason, line)

    def add_peak(self, text: str, line: int) -> None:
        try:
            self.peaks.append(_parse_peak(text))
            self.peak_lines.append(line)
        except ValueError:
            self.fail(f"peak {text[:60]!r} is not 'm/z intensity'", line)

    def fail(self, reason: str, line: int) -> None:
        if self.error is None:
            self.error = (reason, line)

    def unterminated(self, reason: str, line: int) -> None:
        """The block has no end: that is the error to report, with any earlier problem of the block added."""
        if self.error is not None and self.error[1] != line:
            reason += f"; before that, line {self.error[1]}: {self.error[0]}"
        self.error = (reason, line)

    def finish(self, require_precursor: bool) -> Spectrum | SpectrumError:
        title = self.params.get("title", "").strip()
        if self.error is not None:
            return SpectrumError(self.error[0], index=self.index, title=title, line=self.error[1])
        mz, intensity, lines = _peak_arrays(self.peaks, self.peak_lines)
        try:
            return make_spectrum(
                self.index,
                self.params,
                mz,
                intensity,
                line=self.line,
                header_lines=self.header_lines,
                peak_lines=lines,
                require_precursor=require_precursor,
            )
        except SpectrumError as exc:
            return exc


def _stray_error(stray: tuple[int, str]) -> SpectrumError:
    return SpectrumError(f"text outside BEGIN IONS ... END IONS: {stray[1][:60]!r}", line=stray[0])


def _read_mgf(lines: Iterable[tuple[int, str | None]], require_precursor: bool) -> Iterator[Spectrum | SpectrumError]:
    defaults: dict[str, str] = {}  # file-wide headers before the first BEGIN IONS apply to every spectrum
    block: _Block | None = None
    n_blocks = 0
    stray: tuple[int, str] | None = None  # first line and text of a run of text outside any block
    first_text: tuple[int, str] | None = None
    last_line = 0

    for number, text in lines:
        last_line = number
        stripped = None if text is None else text.strip()
        if block is not None and block.error is None and stripped and stripped[0].isdigit():  # the hot path
            block.add_peak(stripped, number)
            continue
        if first_text is None and stripped != "":
            first_text = (number, "binary data" if stripped is None else stripped)
        if stripped == "BEGIN IONS":
            if block is not None:
                block.unterminated(f"no END IONS before the next BEGIN IONS at line {number}", number)
                yield block.finish(require_precursor)
            if stray is not None:
                yield _stray_error(stray)
                stray = None
            block = _Block(n_blocks, number, defaults)
            n_blocks += 1
            continue
        if block is None:
            if stripped is None:
                stray = stray or (number, "binary data")
            elif stripped and stripped[0] not in _COMMENT_CHARS:
                if n_blocks == 0 and "=" in stripped and stray is None:
                    key, value = stripped.split("=", 1)
                    defaults[key.strip().lower()] = value.strip()
                else:
                    stray = stray or (number, stripped)
            continue
        if stripped is None:
            block.fail("binary data (not text)", number)
        elif not stripped or stripped[0] in _COMMENT_CHARS:
            pass
        elif stripped == "END IONS":
            yield block.finish(require_precursor)
            block = None
        elif block.error is not None:
            pass
        elif stripped[0] in "+-.":
            block.add_peak(stripped, number)
        elif "=" in stripped:
            key, value = stripped.split("=", 1)
            key = key.strip().lower()
            block.params[key] = value.strip()
            block.header_lines[key] = number
        else:
            block.fail(f"line {stripped[:60]!r} is neither KEY=VALUE nor 'm/z intensity'", number)

    if block is not None:
        block.unterminated("input ends before END IONS (truncated file?)", last_line)
        yield block.finish(require_precursor)
    if n_blocks == 0:
        if first_text is None:
            yield SpectrumError(EMPTY_INPUT)
        else:
            yield SpectrumError(
                f"no spectra: no BEGIN IONS line (not an MGF file?); first text {first_text[1][:60]!r}",
                line=first_text[0],
            )
    elif stray is not None:
        yield _stray_error(stray)


# --- MSP ------------------------------------------------------------------------------------------------------

# MSP keys (lower case, spaces as written) -> the MGF-style key the rest of the code reads.
_MSP_KEYS = {
    "name": "title",
    "precursormz": "pepmass",
    "precursor_mz": "pepmass",
    "precursor mz": "pepmass",
    "precursor_type": "adduct",
    "precursortype": "adduct",
    "precursor type": "adduct",
    "num peaks": "num_peaks",
    "numpeaks": "num_peaks",
}
_SMILES_IN_COMMENT = re.compile(r'"SMILES=([^"]+)"', re.IGNORECASE)


def _finish_msp(block: _Block, require_precursor: bool) -> Spectrum | SpectrumError:
    expected = block.params.get("num_peaks")
    if block.error is None and expected is not None:
        try:
            n = int(expected)
        except ValueError:
            block.fail(f"Num Peaks {expected!r} is not an integer", block.header_lines.get("num_peaks", block.line))
        else:
            if n != len(block.peaks):
                last = block.peak_lines[-1] if block.peak_lines else block.header_lines.get("num_peaks", block.line)
                block.fail(f"Num Peaks says {n} but {len(block.peaks)} peaks follow (truncated?)", last)
    if "smiles" not in block.params and (m := _SMILES_IN_COMMENT.search(block.params.get("comments", ""))):
        block.params["smiles"] = m.group(1)
    return block.finish(require_precursor)


def _read_msp(lines: Iterable[tuple[int, str | None]], require_precursor: bool) -> Iterator[Spectrum | SpectrumError]:
    block: _Block | None = None
    n_blocks = 0
    in_peaks = False
    for number, text in lines:
        stripped = None if text is None else text.strip()
        if stripped is not None and stripped.lower().startswith("name:"):
            if block is not None:
                yield _finish_msp(block, require_precursor)
            block = _Block(n_blocks, number, {})
            n_blocks += 1
            in_peaks = False
        if block is None:
            if stripped is None or (stripped and stripped[0] not in _COMMENT_CHARS):
                yield SpectrumError("text before the first Name: line (not an MSP file?)", line=number)
                return
            continue
        if stripped is None:
            block.fail("binary data (not text)", number)
        elif not stripped:
            if in_peaks:  # a blank line ends a record's peak list
                yield _finish_msp(block, require_precursor)
                block, in_peaks = None, False
        elif block.error is not None or stripped[0] in _COMMENT_CHARS:
            pass
        elif in_peaks or stripped[0].isdigit():
            in_peaks = True
            # "mz int", "mz\tint \"annotation\"" or several "mz int;" pairs on one line
            for pair in stripped.split(";"):
                pair = pair.split('"')[0].strip()
                if not pair:
                    continue
                block.add_peak(pair, number)
        elif ":" in stripped:
            key, value = stripped.split(":", 1)
            key = key.strip().lower()
            key = _MSP_KEYS.get(key, key)
            block.params[key] = value.strip()
            block.header_lines[key] = number
            in_peaks = key == "num_peaks"
        else:
            block.fail(f"line {stripped[:60]!r} is neither 'Key: value' nor a peak", number)
    if block is not None:
        yield _finish_msp(block, require_precursor)
    if n_blocks == 0:
        yield SpectrumError(EMPTY_INPUT)


# --- public readers -------------------------------------------------------------------------------------------


def _guess_format(source: str | Path | IO, first: str | None) -> str:
    if isinstance(source, str | Path):
        name = str(source).lower().removesuffix(".gz")
        if name.endswith(".msp"):
            return "msp"
        if name.endswith(".mgf"):
            return "mgf"
    return "msp" if first is not None and first.lower().startswith("name:") else "mgf"


def _raise_or_yield(items: Iterable[Spectrum | SpectrumError], strict: bool) -> Iterator[Spectrum | SpectrumError]:
    for item in items:
        if strict and isinstance(item, SpectrumError):
            raise item
        yield item


def read_spectra(
    source: str | Path | IO,
    *,
    strict: bool = False,
    format: str | None = None,
    require_precursor: bool = True,
) -> Iterator[Spectrum | SpectrumError]:
    """Stream the spectra of an MGF, MSP, mzML or mzXML file (plain or gzip), a path or an open file (text or binary).

    Yields a :class:`Spectrum` per good spectrum and a :class:`SpectrumError` per bad one (``strict=True``: raises
    the first error instead). An input with no spectrum at all yields (or raises) a "no spectra" error; a file that
    cannot be read to its end (a corrupt or cut gzip stream) yields what came before and then an error.
    ``format``: "mgf", "msp", "mzml", "mzxml" or None (mzML/mzXML by their XML root element, see
    :mod:`models.featurize.mzml`; else by file suffix, else MSP when the first text line starts with ``Name:``).
    """
    from models.featurize.mzml import XML_FORMATS, peek_xml_format, read_xml_spectra

    if format not in (None, "mgf", "msp", *XML_FORMATS):
        raise ValueError(f"unknown spectrum format {format!r}; use 'mgf', 'msp', 'mzml' or 'mzxml'")
    stream, must_close = _open_binary(source)
    try:
        xml = format if format in XML_FORMATS else None if format else peek_xml_format(stream)
        if xml:
            yield from _raise_or_yield(read_xml_spectra(stream, xml, require_precursor=require_precursor), strict)
            return
        failure: list[SpectrumError] = []
        lines = _text_lines(stream, failure)
        head: list[tuple[int, str | None]] = []
        for item in lines:  # look ahead to the first text line to tell MSP from MGF
            head.append(item)
            if item[1] is None or item[1].strip():
                break
        first = next((text.strip() for _, text in head if text), None)
        reader = _read_msp if (format or _guess_format(source, first)) == "msp" else _read_mgf
        items = reader(itertools.chain(head, lines), require_precursor)
        # An input unreadable from its first byte is not "empty": the read failure alone is reported.
        items = (item for item in items if not (failure and getattr(item, "reason", None) == EMPTY_INPUT))
        yield from _raise_or_yield(items, strict)
        yield from _raise_or_yield(failure, strict)
    finally:
        if must_close:
            stream.close()


def read_spectra_from_json(
    items: list[dict[str, Any]], *, strict: bool = False, require_precursor: bool = True
) -> Iterator[Spectrum | SpectrumError]:
    """Spectra of the HTTP API's JSON form ``{"title", "precursor_mz", "peaks": [[mz, intensity], ...]}``.

    Other scalar keys (``smiles``, ``adduct``, ``charge`` ...) become params; checks as :func:`read_spectra`
    (lines are None: the index names the spectrum).
    """

    def one(index: int, item: Any) -> Spectrum | SpectrumError:
        if not isinstance(item, dict):
            return SpectrumError("a spectrum must be a JSON object", index=index)
        params = {
            k.lower(): str(v) for k, v in item.items() if isinstance(v, str | int | float) and not isinstance(v, bool)
        }
        params.pop("precursor_mz", None)
        params["title"] = str(item.get("title") or "")
        if item.get("precursor_mz") is not None:
            params["pepmass"] = str(item["precursor_mz"])
        try:
            peaks = np.asarray(item.get("peaks") or [], dtype=np.float64)
        except (TypeError, ValueError):
            return SpectrumError("peaks must be [[m/z, intensity], ...] numbers", index=index, title=params["title"])
        if peaks.size and (peaks.ndim != 2 or peaks.shape[1] != 2):
            return SpectrumError("peaks must be [[m/z, intensity], ...] pairs", index=index, title=params["title"])
        peaks = peaks.reshape(-1, 2)
        try:
            return make_spectrum(
                index, params, peaks[:, 0].copy(), peaks[:, 1].copy(), require_precursor=require_precursor
            )
        except SpectrumError as exc:
            return exc

    if not items:
        return _raise_or_yield([SpectrumError("no spectra: the list is empty")], strict)
    return _raise_or_yield((one(i, item) for i, item in enumerate(items)), strict)
