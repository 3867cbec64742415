"""One MS/MS spectrum, its validation (:func:`make_spectrum`, whatever form it came in) and the error that names a
bad one (:class:`SpectrumError`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Far above any small-molecule or peptide MS/MS m/z; a larger value is a corrupt number, not a peak.
MAX_MZ = 100_000.0
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
    with np.errstate(over="ignore"):
        total = intensity.sum()
    if not np.isfinite(total):  # binning sums intensities per bin: the sum must stay a number
        raise fail(f"intensities too large: their sum {total:g} is not a finite number")
    return Spectrum(index, title, precursor, charge, mz, intensity, dict(params))
