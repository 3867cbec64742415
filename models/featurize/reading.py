"""What the spectrum readers (MGF, MSP) share: opening an input (plain or gzip, by its magic bytes), decoding it
(UTF-8 with a Latin-1 fallback, UTF-16 by its byte-order mark or its zero bytes), splitting lines (LF, CRLF, CR
alone, mixed), the bounds on the work of one input (:class:`ReadLimits`), and the block of one spectrum being read.

Why bounded here: a 20 KB gzip stream can hold gigabytes of text. The decompressed bytes are counted as they are
read, so an input over ``max_bytes`` stops there (:class:`InputTooLarge`) instead of after it was all held; a
line is read at most :data:`MAX_LINE_CHARS` at a time, so one endless line never sits in memory whole.
"""

from __future__ import annotations

import codecs
import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from models.featurize.spectrum import Spectrum, SpectrumError, make_spectrum

# Longer lines are refused (a peak or header line is well under 100 characters; MSP peak lists a few thousand).
MAX_LINE_CHARS = 1 << 20
EMPTY_INPUT = "no spectra: the input is empty"
COMMENT_CHARS = "#;!/"
# C0 control characters other than tab and the line ends: their presence marks binary data, not text.
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CHUNK = 1 << 16


def _latin1_fallback(error: UnicodeDecodeError) -> tuple[str, int]:
    # Bytes that are not UTF-8 are read as Latin-1 (legacy text files); binary data is caught by _BINARY.
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error("msvae-latin1", _latin1_fallback)


class InputTooLarge(ValueError):
    """The input as a whole exceeds one of its :class:`ReadLimits` (``limit``: the field's name)."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on the work of reading one input; None leaves a bound off.

    ``max_bytes``: decompressed bytes; ``max_spectra``: spectrum blocks; ``max_peaks``: peaks of one spectrum (a
    spectrum with more is rejected, the others are read); ``check``: called for every 64 KiB read, it may raise to
    stop the reading (a request cancelled or out of time); ``names``: how messages name each bound (e.g. the setting
    that sets it), by field name.
    """

    max_bytes: int | None = None
    max_spectra: int | None = None
    max_peaks: int | None = None
    check: Callable[[], None] | None = None
    names: Mapping[str, str] = field(default_factory=dict)

    def name(self, limit: str) -> str:
        """How messages call the bound ``limit``."""
        return self.names.get(limit, limit)

    def too_many_spectra(self) -> InputTooLarge:
        return InputTooLarge(f"more than {self.max_spectra} spectra (limit {self.name('max_spectra')})", "max_spectra")


NO_LIMITS = ReadLimits()


class _CountingReader(io.RawIOBase):
    """A binary stream that counts what is read through it: over ``max_bytes`` raises :class:`InputTooLarge`, and
    ``check`` runs once per read (the buffered reader above reads 64 KiB at a time). It seeks where the stream
    below does (pyteomics' XML readers seek); bytes read again after a seek back count again."""

    def __init__(self, inner: IO[bytes], limits: ReadLimits) -> None:
        self.inner = inner
        self.limits = limits
        self.count = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.inner.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.limits.check is not None:
            self.limits.check()
        data = self.inner.read(len(buffer))
        n = len(data)
        self.count += n
        if self.limits.max_bytes is not None and self.count > self.limits.max_bytes:
            size = f"{self.limits.max_bytes / 1024 / 1024:g} MiB"
            raise InputTooLarge(
                f"the input is larger than {size} (decompressed; limit {self.limits.name('max_bytes')})", "max_bytes"
            )
        buffer[:n] = data
        return n


def _head(stream: IO[bytes], n: int) -> bytes:
    """The first ``n`` bytes of a buffered or seekable stream, left unread."""
    if hasattr(stream, "peek"):
        return stream.peek(n)[:n]
    pos = stream.tell()
    head = stream.read(n)
    stream.seek(pos)
    return head


def _encoding(head: bytes) -> str:
    """The text encoding of an input starting with ``head``: by byte-order mark, else UTF-16 when most bytes at
    even (big-endian) or odd (little-endian) positions are zero, as in ASCII-range text, else UTF-8 (with the
    Latin-1 fallback). Text in UTF-8 or Latin-1 has no zero bytes: those are binary data."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    pairs = len(head) // 2
    if pairs >= 2:
        zeros_even, zeros_odd = head[0 : 2 * pairs : 2].count(0), head[1 : 2 * pairs : 2].count(0)
        if zeros_odd >= 0.7 * pairs and zeros_even <= 0.1 * pairs:
            return "utf-16-le"
        if zeros_even >= 0.7 * pairs and zeros_odd <= 0.1 * pairs:
            return "utf-16-be"
    return "utf-8"


def open_binary(source: str | Path | IO, limits: ReadLimits = NO_LIMITS) -> tuple[IO[bytes] | IO[str], IO | None]:
    """(decompressed stream, the stream to close or None) of a path or an open file.

    Binary input is decompressed when it starts with the gzip magic bytes; every byte after decompression counts
    against ``limits.max_bytes`` (the result can ``peek``). A text stream is returned as it is.
    """
    if isinstance(source, io.TextIOBase):
        return source, None
    opened = open(source, "rb") if isinstance(source, str | Path) else None  # noqa: SIM115 -- closed by the caller
    raw: IO[bytes] = opened if opened is not None else source  # type: ignore[assignment]
    if not (hasattr(raw, "peek") or raw.seekable()):
        raw = io.BytesIO(raw.read())  # an unseekable stream without peek: its start must be looked at
    if _head(raw, 2) == b"\x1f\x8b":
        raw = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
    return io.BufferedReader(_CountingReader(raw, limits), buffer_size=_CHUNK), opened


def as_text(stream: IO[bytes] | IO[str]) -> IO[str]:
    """A text stream with universal newlines over a stream of :func:`open_binary`, decoded as :func:`_encoding`
    says (a text stream is returned as it is)."""
    if isinstance(stream, io.TextIOBase):
        return stream
    try:
        head = _head(stream, 64)
    except (OSError, EOFError, zlib.error):
        head = b""  # unreadable from the start: reading the lines reports it
    return io.TextIOWrapper(stream, encoding=_encoding(head), errors="msvae-latin1", newline=None)


def open_text(source: str | Path | IO, limits: ReadLimits = NO_LIMITS) -> tuple[IO[str], IO | None]:
    """(text stream with universal newlines, the stream to close or None): :func:`open_binary`, then
    :func:`as_text`."""
    stream, opened = open_binary(source, limits)
    return as_text(stream), opened


@dataclass(frozen=True)
class BadLine:
    """A line that cannot be read as text, and why."""

    reason: str


def text_lines(stream: IO[str], failure: list[SpectrumError]) -> Iterator[tuple[int, str | BadLine]]:
    """(1-based line number, text without its line end) per line; a line of binary data or one longer than
    :data:`MAX_LINE_CHARS` is a :class:`BadLine`. A run of blank lines is given as its first line (the readers treat
    them alike), so a flood of empty lines costs little. A read failure (corrupt or cut gzip stream) ends the lines
    and is kept in ``failure``; :class:`InputTooLarge` and whatever ``check`` raises pass through."""
    number = 0
    blank_before = False
    pending = ""  # the start of a line whose end is not read yet
    too_long = False  # the line being read passed MAX_LINE_CHARS: the rest of it is skipped
    try:
        while True:
            chunk = stream.read(_CHUNK)  # read in chunks and split here: much faster than readline per line
            parts = (pending + chunk).split("\n") if chunk else ([pending] if pending or too_long else [])
            pending = parts.pop() if chunk else ""
            for text in parts:
                number += 1
                if too_long:
                    too_long, blank_before = False, False
                    yield number, BadLine(f"a line longer than {MAX_LINE_CHARS} characters")
                elif not text or text.isspace():
                    if not blank_before:
                        yield number, ""
                    blank_before = True
                else:
                    blank_before = False
                    if number == 1:
                        text = text.lstrip("\ufeff")
                    yield number, (BadLine("binary data (not text)") if _BINARY.search(text) else text)
            if not chunk:
                return
            if too_long or len(pending) > MAX_LINE_CHARS:
                too_long, pending = True, ""
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: corrupt deflate data inside a gzip stream
        failure.append(SpectrumError(f"cannot read the input after line {number}: {exc}", line=number + 1))


def _parse_peak(text: str) -> tuple[float, float]:
    parts = text.split()
    if len(parts) < 2:
        raise ValueError
    return float(parts[0]), float(parts[1])


class Block:
    """A spectrum being read (an MGF ``BEGIN IONS`` block or an MSP record): headers, peaks and the first
    problem met."""

    def __init__(self, index: int, line: int, defaults: dict[str, str], limits: ReadLimits = NO_LIMITS):
        self.index = index
        self.line = line
        self.limits = limits
        self.params: dict[str, str] = dict(defaults)
        self.header_lines: dict[str, int] = {}
        self.peaks: list[tuple[float, float]] = []
        self.peak_lines: list[int] = []
        self.error: tuple[str, int] | None = None  # the first problem met: (reason, line)

    def add_peak(self, text: str, line: int) -> None:
        max_peaks = self.limits.max_peaks
        if max_peaks is not None and len(self.peaks) >= max_peaks:
            self.fail(f"more than {max_peaks} peaks (limit {self.limits.name('max_peaks')})", line)
            return
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
        arr = np.array(self.peaks, dtype=np.float64).reshape(-1, 2)
        try:
            return make_spectrum(
                self.index,
                self.params,
                arr[:, 0].copy(),
                arr[:, 1].copy(),
                line=self.line,
                header_lines=self.header_lines,
                peak_lines=np.array(self.peak_lines, dtype=np.int64),
                require_precursor=require_precursor,
            )
        except SpectrumError as exc:
            return exc


def raise_or_yield(items: Iterable[Spectrum | SpectrumError], strict: bool) -> Iterator[Spectrum | SpectrumError]:
    """``items``, raising the first :class:`SpectrumError` instead when ``strict``."""
    for item in items:
        if strict and isinstance(item, SpectrumError):
            raise item
        yield item
