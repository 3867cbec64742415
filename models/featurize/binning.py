"""Spectra to fixed-length vectors: m/z bins with a choice of intensity transform, recorded in every model.

Steps, in order, per spectrum:
1. keep peaks with ``min_mz <= m/z < max_mz`` and intensity > 0;
2. ``remove_above_precursor``: drop peaks above ``precursor_mz + precursor_tolerance`` (MIST's rule: the precursor
   peak itself stays, its heavier isotopes and noise above it go);
3. ``max_peaks``: keep the N most intense of those;
4. sum intensities per bin: bin = floor((m/z - min_mz) / bin_width), computed on the ratio rounded to 9 decimals so
   that m/z values on a bin edge (0.3 / 0.1 = 2.9999999999999996 in floats) fall in the bin they start;
5. transform: ``"sqrt"`` (default) = divide by the largest bin, then square root (MIST's max-normalised, square-rooted
   intensities: instrument-independent, and the root lifts small fragments); ``"log1p"`` = log(1 + summed raw
   intensity), the paper's own code; ``"log1p-relative"`` = log(1 + 100 * bin / largest bin), the paper's setting on
   relative intensities (0-100 scale, so every value lies in [0, ln 101] whatever the instrument's units);
   ``"linear"`` = divide by the largest bin.

A spectrum with no peak left after 1-3 raises :class:`SpectrumError` with the reason: never a silent zero vector.
The defaults (0.1 Da bins over m/z 0-1100: 11,000 features) are the paper's input size (Table A.8).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import scipy.sparse

from models.featurize.mgf import Spectrum, SpectrumError

INTENSITY_TRANSFORMS = ("sqrt", "log1p", "log1p-relative", "linear")
RELATIVE_SCALE = 100.0  # "log1p-relative": intensities on a 0-100 scale, as the paper's spectra code
LOG1P_RELATIVE_MAX = float(np.log1p(RELATIVE_SCALE))  # ln 101, the largest "log1p-relative" value


@dataclass(frozen=True)
class BinningSpec:
    """How a spectrum becomes a vector; travels inside a model directory as JSON (:meth:`to_dict`)."""

    min_mz: float = 0.0
    max_mz: float = 1100.0
    bin_width: float = 0.1
    intensity: str = "sqrt"
    remove_above_precursor: bool = True
    precursor_tolerance: float = 1.0
    max_peaks: int | None = None

    def __post_init__(self) -> None:
        if self.intensity not in INTENSITY_TRANSFORMS:
            raise ValueError(f"intensity {self.intensity!r} is not one of {', '.join(INTENSITY_TRANSFORMS)}")
        if not (self.bin_width > 0 and self.max_mz > self.min_mz >= 0):
            raise ValueError(f"need bin_width > 0 and max_mz > min_mz >= 0, got {self}")
        span = (self.max_mz - self.min_mz) / self.bin_width
        if abs(span - round(span)) > 1e-6:
            raise ValueError(f"max_mz - min_mz = {self.max_mz - self.min_mz} is not a whole number of bins")
        if self.max_peaks is not None and self.max_peaks < 1:
            raise ValueError(f"max_peaks must be None or >= 1, got {self.max_peaks}")
        if self.precursor_tolerance < 0:
            raise ValueError(f"precursor_tolerance must be >= 0, got {self.precursor_tolerance}")

    @property
    def n_bins(self) -> int:
        return round((self.max_mz - self.min_mz) / self.bin_width)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BinningSpec:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError (a model from a newer version, or a typo)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown binning settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)


def _bin_entries(spectra: Sequence[Spectrum], spec: BinningSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, bins, values) of the non-zero entries, sorted by row then bin, transform applied."""
    if not len(spectra):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    counts = np.fromiter((len(s.mz) for s in spectra), dtype=np.int64, count=len(spectra))
    rows = np.repeat(np.arange(len(spectra)), counts)
    mz = np.concatenate([s.mz for s in spectra])
    intensity = np.concatenate([s.intensity for s in spectra])

    keep = (mz >= spec.min_mz) & (mz < spec.max_mz) & (intensity > 0)
    if spec.remove_above_precursor:
        missing = [s for s in spectra if s.precursor_mz is None]
        if missing:
            s = missing[0]
            raise SpectrumError("no precursor m/z to remove the peaks above it", index=s.index, title=s.title)
        limit = np.array([s.precursor_mz for s in spectra], dtype=np.float64) + spec.precursor_tolerance
        keep &= mz <= limit[rows]
    rows, mz, intensity = rows[keep], mz[keep], intensity[keep]

    if spec.max_peaks is not None:
        order = np.lexsort((-intensity, rows))  # by row, most intense first; stable, so ties keep file order
        rows, mz, intensity = rows[order], mz[order], intensity[order]
        starts = np.searchsorted(rows, rows, side="left")
        top = np.arange(len(rows)) - starts < spec.max_peaks
        rows, mz, intensity = rows[top], mz[top], intensity[top]

    present = np.bincount(rows, minlength=len(spectra)) > 0
    if not present.all():
        s = spectra[int(np.argmin(present))]
        raise SpectrumError(_empty_reason(s, spec), index=s.index, title=s.title)

    bins = np.floor(np.round((mz - spec.min_mz) / spec.bin_width, 9)).astype(np.int64)
    key, inverse = np.unique(rows * spec.n_bins + bins, return_inverse=True)
    values = np.bincount(inverse, weights=intensity)
    rows, bins = key // spec.n_bins, key % spec.n_bins

    if spec.intensity == "log1p":
        values = np.log1p(values)
    else:
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        peak = np.maximum.reduceat(values, starts)
        values = values / np.repeat(peak, np.diff(np.r_[starts, len(rows)]))
        if spec.intensity == "sqrt":
            values = np.sqrt(values)
        elif spec.intensity == "log1p-relative":
            values = np.log1p(RELATIVE_SCALE * values)
    return rows, bins, values


def _empty_reason(s: Spectrum, spec: BinningSpec) -> str:
    positive = s.intensity > 0
    if not positive.any():
        return "no peak with intensity > 0"
    in_range = positive & (s.mz >= spec.min_mz) & (s.mz < spec.max_mz)
    if not in_range.any():
        return f"no peak in the binned m/z range [{spec.min_mz:g}, {spec.max_mz:g})"
    return f"no peak at or below the precursor m/z {s.precursor_mz:g} + {spec.precursor_tolerance:g}"


def featurize_spectra(
    spectra: Sequence[Spectrum], spec: BinningSpec, *, sparse: bool = False
) -> np.ndarray | scipy.sparse.csr_matrix:
    """Binned vectors of spectra, (N, n_bins) float32; vectorized over all peaks of all spectra at once.

    ``sparse=True`` returns a CSR matrix instead (MassBank's 44k spectra are 2 GB dense, 6 MB sparse).
    Raises :class:`SpectrumError` for the first spectrum with no peak left after filtering.
    """
    rows, bins, values = _bin_entries(spectra, spec)
    shape = (len(spectra), spec.n_bins)
    if sparse:
        return scipy.sparse.csr_matrix((values.astype(np.float32), (rows, bins)), shape=shape)
    out = np.zeros(shape, dtype=np.float32)
    out[rows, bins] = values
    return out


def featurize_spectrum(spectrum: Spectrum, spec: BinningSpec) -> np.ndarray:
    """Binned vector (n_bins,) float32 of one spectrum (see :func:`featurize_spectra`)."""
    return featurize_spectra([spectrum], spec)[0]
