"""Reading MS/MS spectra from mzML and mzXML, the XML formats that instruments' converters write (ProteoWizard
msconvert, vendor exporters), with pyteomics' streaming parsers (lxml ``iterparse``: one scan in memory at a time).

Only MS2 scans are spectra here: MS1 survey scans (and MSn with n > 2) are passed over. Each MS2 scan becomes a
:class:`~models.featurize.mgf.Spectrum` checked by the same :func:`~models.featurize.mgf.make_spectrum` as MGF
and MSP, with its precursor m/z (mzML: the first selected ion's ``selected ion m/z``; mzXML: ``precursorMz``)
and charge (signed by the scan's polarity when given). ``index`` counts the MS2 scans of the file from 0 and the
``TITLE`` is the scan's native id (mzML ``id``, e.g. ``controllerType=0 controllerNumber=1 scan=42``, or its
``spectrum title`` when the converter wrote one; mzXML ``scan=<num>``), so a rejection names the scan. An MS2
scan without a precursor is rejected with that reason and reading goes on; XML that cannot be parsed ends the
input with one error after the scans read so far.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import IO, Any

import numpy as np
from lxml.etree import LxmlError
from pyteomics import mzml, mzxml
from pyteomics.auxiliary import PyteomicsError

from models.featurize.reading import NO_LIMITS, InputTooLarge, ReadLimits
from models.featurize.spectrum import Spectrum, SpectrumError, make_spectrum

XML_FORMATS = ("mzml", "mzxml")
_SNIFF_BYTES = 4096


def sniff_xml_format(head: bytes) -> str | None:
    """``"mzml"`` or ``"mzxml"`` when the first bytes of a (decompressed) file are such XML, else None."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"<"):
        return None
    if b"<mzML" in text or b"<indexedmzML" in text:
        return "mzml"
    if b"<mzXML" in text:
        return "mzxml"
    return None


def peek_xml_format(stream: IO) -> str | None:
    """:func:`sniff_xml_format` of a binary stream's start, leaving the stream where it was (None when the stream
    can neither peek nor seek, is text, or cannot be read: the text readers then report why)."""
    if isinstance(stream, io.TextIOBase):
        return None
    try:
        if hasattr(stream, "peek"):
            return sniff_xml_format(stream.peek(_SNIFF_BYTES)[:_SNIFF_BYTES])
        if stream.seekable():
            position = stream.tell()
            head = stream.read(_SNIFF_BYTES)
            stream.seek(position)
            return sniff_xml_format(head)
    except (OSError, EOFError, zlib.error):
        pass
    return None


def read_xml_spectra(
    stream: IO[bytes], format: str, *, require_precursor: bool = True, limits: ReadLimits = NO_LIMITS
) -> Iterator[Spectrum | SpectrumError]:
    """Stream the MS2 spectra of an mzML (``format="mzml"``) or mzXML (``"mzxml"``) binary stream, a
    :class:`SpectrumError` in place of each MS2 scan that cannot be used (one without a precursor when
    ``require_precursor``, one over ``limits.max_peaks``). A file without any MS2 scan yields one "no spectra"
    error; more MS2 scans than ``limits.max_spectra`` raise :class:`InputTooLarge` (the stream itself counts the
    decompressed bytes, see :func:`models.featurize.reading.open_binary`)."""
    if format not in XML_FORMATS:
        raise ValueError(f"unknown XML spectrum format {format!r}; use 'mzml' or 'mzxml'")
    name = _NAMES[format]
    index = 0
    try:
        for scan in _mzml_scans(stream) if format == "mzml" else _mzxml_scans(stream):
            if limits.max_spectra is not None and index >= limits.max_spectra:
                raise limits.too_many_spectra()
            if limits.max_peaks is not None and len(scan[3]) > limits.max_peaks:
                message = f"more than {limits.max_peaks} peaks (limit {limits.name('max_peaks')})"
                yield SpectrumError(message, index=index, title=scan[0])
            else:
                yield _spectrum(index, scan, require_precursor)
            index += 1
    except InputTooLarge:
        raise
    except (LxmlError, PyteomicsError, ValueError, KeyError, TypeError, OSError, EOFError) as exc:
        yield SpectrumError(f"not a readable {name} file after {index} MS2 scans: {exc}")
        return
    if index == 0:
        yield SpectrumError(f"no spectra: the {name} file holds no MS2 scan")


_NAMES = {"mzml": "mzML", "mzxml": "mzXML"}
# (title, precursor m/z or None, signed charge or None, m/z array, intensity array) of one MS2 scan
_Scan = tuple[str, float | None, int | None, Any, Any]


def _spectrum(index: int, scan: _Scan, require_precursor: bool) -> Spectrum | SpectrumError:
    title, precursor, charge, mz, intensity = scan
    if precursor is None and require_precursor:
        return SpectrumError("MS2 scan without a precursor m/z (no selected ion)", index=index, title=title)
    params = {"title": title}
    if precursor is not None:
        params["pepmass"] = repr(float(precursor))
    if charge:
        params["charge"] = f"{abs(charge)}{'-' if charge < 0 else '+'}"
    mz = np.asarray(mz, dtype=np.float64)
    intensity = np.asarray(intensity, dtype=np.float64)
    if mz.shape != intensity.shape:
        return SpectrumError(f"{len(mz)} m/z values but {len(intensity)} intensities", index=index, title=title)
    try:
        return make_spectrum(index, params, mz, intensity, require_precursor=require_precursor)
    except SpectrumError as exc:
        return exc


def _signed(charge: Any, negative: bool) -> int | None:
    if charge in (None, ""):
        return None
    return -abs(int(charge)) if negative else int(charge)


def _mzml_scans(stream: IO[bytes]) -> Iterator[_Scan]:
    for scan in mzml.MzML(stream, use_index=False, decode_binary=True):
        # "ms level" is required by the schema; without it, a scan with a precursor counts as MS2
        level = scan.get("ms level", 2 if "precursorList" in scan or "MSn spectrum" in scan else 1)
        if level != 2:
            continue
        ions = [
            ion
            for precursor in scan.get("precursorList", {}).get("precursor", [])
            for ion in precursor.get("selectedIonList", {}).get("selectedIon", [])
        ]
        ion = ions[0] if ions else {}
        title = str(scan.get("spectrum title") or scan.get("id") or f"index={scan.get('index')}")
        charge = _signed(ion.get("charge state"), "negative scan" in scan)
        yield title, ion.get("selected ion m/z"), charge, scan.get("m/z array", ()), scan.get("intensity array", ())


def _mzxml_scans(stream: IO[bytes]) -> Iterator[_Scan]:
    for scan in mzxml.MzXML(stream, use_index=False, decode_binary=True):
        if int(scan.get("msLevel", 1)) != 2:
            continue
        precursors = scan.get("precursorMz") or [{}]
        first = precursors[0]
        charge = _signed(first.get("precursorCharge"), scan.get("polarity") == "-")
        title = f"scan={scan.get('num', scan.get('id', '?'))}"
        yield title, first.get("precursorMz"), charge, scan.get("m/z array", ()), scan.get("intensity array", ())
