"""Reading MS/MS spectra: MGF and MSP files (plain or gzip) and the HTTP API's JSON form, with per-spectrum errors;
:func:`read_spectra` is the entry point for files, and this module keeps every public name of the readers.

Every spectrum goes through one validation function (:func:`make_spectrum`), whichever form it came in. A bad
spectrum becomes a :class:`SpectrumError` that names it (0-based index in the input, ``TITLE``) and the 1-based
line of the problem; in the default non-strict mode it is yielded in place of the spectrum and reading goes on with
the next one, so nothing acceptable is lost. ``strict=True`` raises the first error instead. The work of one input
is bounded by :class:`ReadLimits` (decompressed size, spectra, peaks per spectrum, a cancellation check).

Why not ``pyteomics.mgf`` (5.0): it reports no line numbers, stops the whole file at the first unparsable peak line
or missing ``END IONS``, and yields None for a block cut off by the end of the file. MGF is a line format simple
enough to split and check here (the tests hold this reader against pyteomics on MassBank); pyteomics has no MSP
reader, so MSP (NIST / MoNA style) is parsed here too (``msp.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from models.featurize.json_spectra import read_spectra_from_json
from models.featurize.msp import read_msp
from models.featurize.mzml import XML_FORMATS, peek_xml_format, read_xml_spectra
from models.featurize.reading import (
    COMMENT_CHARS,
    EMPTY_INPUT,
    NO_LIMITS,
    BadLine,
    Block,
    InputTooLarge,
    ReadLimits,
    as_text,
    open_binary,
    raise_or_yield,
    text_lines,
)
from models.featurize.spectrum import MAX_MZ, Spectrum, SpectrumError, make_spectrum, parse_charge

__all__ = [
    "EMPTY_INPUT",
    "MAX_MZ",
    "InputTooLarge",
    "ReadLimits",
    "Spectrum",
    "SpectrumError",
    "make_spectrum",
    "parse_charge",
    "read_mgf",
    "read_spectra",
    "read_spectra_from_json",
]


def _stray_error(stray: tuple[int, str]) -> SpectrumError:
    return SpectrumError(f"text outside BEGIN IONS ... END IONS: {stray[1][:60]!r}", line=stray[0])


def read_mgf(
    lines: Iterable[tuple[int, str | BadLine]], require_precursor: bool, limits: ReadLimits = NO_LIMITS
) -> Iterator[Spectrum | SpectrumError]:
    """Spectra and errors of MGF text lines (as :func:`~models.featurize.reading.text_lines` gives them)."""
    defaults: dict[str, str] = {}  # file-wide headers before the first BEGIN IONS apply to every spectrum
    block: Block | None = None
    n_blocks = 0
    stray: tuple[int, str] | None = None  # first line and text of a run of text outside any block
    first_text: tuple[int, str] | None = None
    last_line = 0

    for number, text in lines:
        last_line = number
        stripped = None if isinstance(text, BadLine) else text.strip()
        if block is not None and block.error is None and stripped and stripped[0].isdigit():  # the hot path
            block.add_peak(stripped, number)
            continue
        if first_text is None and stripped != "":
            first_text = (number, text.reason if isinstance(text, BadLine) else stripped)
        if stripped == "BEGIN IONS":
            if block is not None:
                block.unterminated(f"no END IONS before the next BEGIN IONS at line {number}", number)
                yield block.finish(require_precursor)
            if stray is not None:
                yield _stray_error(stray)
                stray = None
            if limits.max_spectra is not None and n_blocks >= limits.max_spectra:
                raise limits.too_many_spectra()
            block = Block(n_blocks, number, defaults, limits)
            n_blocks += 1
            continue
        if block is None:
            if isinstance(text, BadLine):
                stray = stray or (number, text.reason)
            elif stripped and stripped[0] not in COMMENT_CHARS:
                if n_blocks == 0 and "=" in stripped and stray is None:
                    key, value = stripped.split("=", 1)
                    defaults[key.strip().lower()] = value.strip()
                else:
                    stray = stray or (number, stripped)
            continue
        if isinstance(text, BadLine):
            block.fail(text.reason, number)
        elif not stripped or stripped[0] in COMMENT_CHARS:
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


def _guess_format(source: str | Path | IO, first: str | None) -> str:
    if isinstance(source, str | Path):
        name = str(source).lower().removesuffix(".gz")
        if name.endswith(".msp"):
            return "msp"
        if name.endswith(".mgf"):
            return "mgf"
    return "msp" if first is not None and first.lower().startswith("name:") else "mgf"


def read_spectra(
    source: str | Path | IO,
    *,
    strict: bool = False,
    format: str | None = None,
    require_precursor: bool = True,
    limits: ReadLimits = NO_LIMITS,
) -> Iterator[Spectrum | SpectrumError]:
    """Stream the spectra of an MGF, MSP, mzML or mzXML file (plain or gzip), a path or an open file (text or binary).

    Yields a :class:`Spectrum` per good spectrum and a :class:`SpectrumError` per bad one (``strict=True``: raises
    the first error instead). An input with no spectrum at all yields (or raises) a "no spectra" error; a file that
    cannot be read to its end (a corrupt or cut gzip stream) yields what came before and then an error.
    ``format``: "mgf", "msp", "mzml", "mzxml" or None (mzML/mzXML by their XML root element, see
    :mod:`models.featurize.mzml`; else by file suffix, else MSP when the first text line starts with ``Name:``).
    Text is UTF-8 (Latin-1 where it is not) or UTF-16, with any line ends. An input over a bound of ``limits``
    raises :class:`InputTooLarge` when the bound is passed (a spectrum with too many peaks is only rejected).
    """
    if format not in (None, "mgf", "msp", *XML_FORMATS):
        raise ValueError(f"unknown spectrum format {format!r}; use 'mgf', 'msp', 'mzml' or 'mzxml'")
    binary, to_close = open_binary(source, limits)
    try:
        xml = format if format in XML_FORMATS else None if format else peek_xml_format(binary)
        if xml:
            items = read_xml_spectra(binary, xml, require_precursor=require_precursor, limits=limits)
            yield from raise_or_yield(items, strict)
            return
        stream = as_text(binary)
        failure: list[SpectrumError] = []
        lines = text_lines(stream, failure)
        head: list[tuple[int, str | BadLine]] = []
        for item in lines:  # look ahead to the first non-blank line to tell MSP from MGF (blank runs come as one)
            head.append(item)
            if isinstance(item[1], BadLine) or item[1].strip():
                break
        first = next((text.strip() for _, text in head if isinstance(text, str) and text.strip()), None)
        reader = read_msp if (format or _guess_format(source, first)) == "msp" else read_mgf
        items = reader(itertools.chain(head, lines), require_precursor, limits)
        # An input unreadable from its first byte is not "empty": the read failure alone is reported.
        items = (item for item in items if not (failure and getattr(item, "reason", None) == EMPTY_INPUT))
        yield from raise_or_yield(items, strict)
        yield from raise_or_yield(failure, strict)
    finally:
        if to_close is not None:
            to_close.close()
