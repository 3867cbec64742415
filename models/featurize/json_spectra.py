"""Spectra of the HTTP API's JSON form: ``[{"title", "precursor_mz", "peaks": [[mz, intensity], ...], ...}]``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from models.featurize.reading import NO_LIMITS, ReadLimits, raise_or_yield
from models.featurize.spectrum import Spectrum, SpectrumError, make_spectrum


def _one(index: int, item: Any, require_precursor: bool, limits: ReadLimits) -> Spectrum | SpectrumError:
    if not isinstance(item, dict):
        return SpectrumError("a spectrum must be a JSON object", index=index)
    scalars = {k: v for k, v in item.items() if isinstance(v, str | int | float) and not isinstance(v, bool)}
    params = {k.lower(): str(v) for k, v in scalars.items()}
    params.pop("precursor_mz", None)
    title = item.get("title")
    params["title"] = title if isinstance(title, str) else str(title or "")
    if item.get("precursor_mz") is not None:
        params["pepmass"] = str(item["precursor_mz"])

    def fail(reason: str) -> SpectrumError:
        return SpectrumError(reason, index=index, title=params["title"])

    raw = item.get("peaks") or []
    if limits.max_peaks is not None and isinstance(raw, list) and len(raw) > limits.max_peaks:
        return fail(f"more than {limits.max_peaks} peaks (limit {limits.name('max_peaks')})")
    try:
        peaks = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer too large for a float
        return fail("peaks must be [[m/z, intensity], ...] numbers (finite, within the range of a double)")
    if peaks.size and (peaks.ndim != 2 or peaks.shape[1] != 2):
        return fail("peaks must be [[m/z, intensity], ...] pairs")
    peaks = peaks.reshape(-1, 2)
    try:
        return make_spectrum(index, params, peaks[:, 0].copy(), peaks[:, 1].copy(), require_precursor=require_precursor)
    except SpectrumError as exc:
        return exc


def read_spectra_from_json(
    items: list[dict[str, Any]],
    *,
    strict: bool = False,
    require_precursor: bool = True,
    limits: ReadLimits = NO_LIMITS,
) -> Iterator[Spectrum | SpectrumError]:
    """Spectra of the HTTP API's JSON form ``{"title", "precursor_mz", "peaks": [[mz, intensity], ...]}``.

    Other scalar keys (``smiles``, ``adduct``, ``charge`` ...) become params; checks as
    :func:`~models.featurize.mgf.read_spectra` (lines are None: the index names the spectrum). More items than
    ``limits.max_spectra`` raise :class:`~models.featurize.reading.InputTooLarge` before any is read.
    """
    if not items:
        return raise_or_yield([SpectrumError("no spectra: the list is empty")], strict)
    if limits.max_spectra is not None and len(items) > limits.max_spectra:
        raise limits.too_many_spectra()
    return raise_or_yield((_one(i, item, require_precursor, limits) for i, item in enumerate(items)), strict)
