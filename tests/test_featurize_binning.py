"""Binning spectra against hand-computed vectors, the spec's JSON round trip, and real MassBank spectra."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from models.featurize.binning import BinningSpec, featurize_spectra, featurize_spectrum
from models.featurize.mgf import Spectrum, SpectrumError, read_spectra

SMALL = dict(min_mz=0.0, max_mz=300.0, bin_width=0.1)  # 3,000 bins


def _spectrum(peaks, precursor=200.0, index=0, title="t") -> Spectrum:
    arr = np.array(peaks, dtype=np.float64).reshape(-1, 2)
    return Spectrum(index, title, precursor, 1, arr[:, 0].copy(), arr[:, 1].copy(), {})


# (m/z, intensity): two peaks share bin 500, 0.3 sits on a bin edge (0.3 / 0.1 = 2.9999999999999996 in floats),
# 201.5 is above the precursor 200 + 1, 1200 is out of range, 150 has intensity 0.
PEAKS = [(50.02, 4.0), (50.08, 12.0), (100.0, 64.0), (0.3, 1.0), (201.5, 100.0), (1200.0, 5.0), (150.0, 0.0)]


def _nonzero(vec):
    idx = np.flatnonzero(vec)
    return dict(zip(idx.tolist(), vec[idx].tolist(), strict=True))


def test_sqrt_default_by_hand():
    vec = featurize_spectrum(_spectrum(PEAKS), BinningSpec(**SMALL))
    assert vec.dtype == np.float32 and vec.shape == (3000,)
    got = _nonzero(vec)
    assert got.keys() == {3, 500, 1000}
    assert got[1000] == pytest.approx(1.0)  # base peak
    assert got[500] == pytest.approx(math.sqrt(16 / 64))  # 4 + 12 summed, then normalised, then sqrt
    assert got[3] == pytest.approx(math.sqrt(1 / 64))


def test_log1p_and_linear_by_hand():
    got = _nonzero(featurize_spectrum(_spectrum(PEAKS), BinningSpec(**SMALL, intensity="log1p")))
    assert got == pytest.approx({3: math.log(2), 500: math.log(17), 1000: math.log(65)})
    got = _nonzero(featurize_spectrum(_spectrum(PEAKS), BinningSpec(**SMALL, intensity="linear")))
    assert got == pytest.approx({3: 1 / 64, 500: 16 / 64, 1000: 1.0})


def test_log1p_relative_by_hand_and_bounded():
    # the paper's setting: log(1 + intensity on a 0-100 scale), so the base peak is ln 101 whatever the units
    got = _nonzero(featurize_spectrum(_spectrum(PEAKS), BinningSpec(**SMALL, intensity="log1p-relative")))
    assert got == pytest.approx({3: math.log1p(100 / 64), 500: math.log1p(100 * 16 / 64), 1000: math.log(101)})
    scaled = [(mz, 1000 * i) for mz, i in PEAKS]
    again = _nonzero(featurize_spectrum(_spectrum(scaled), BinningSpec(**SMALL, intensity="log1p-relative")))
    assert again == pytest.approx(got)


def test_precursor_filter_and_max_peaks_by_hand():
    kept = _nonzero(featurize_spectrum(_spectrum(PEAKS), BinningSpec(**SMALL, remove_above_precursor=False)))
    assert kept == pytest.approx({3: 0.1, 500: 0.4, 1000: 0.8, 2015: 1.0})  # sqrt(x / 100)
    tolerant = _nonzero(featurize_spectrum(_spectrum(PEAKS), BinningSpec(**SMALL, precursor_tolerance=1.5)))
    assert 2015 in tolerant  # 201.5 <= 200 + 1.5
    top2 = _nonzero(featurize_spectrum(_spectrum(PEAKS), BinningSpec(**SMALL, max_peaks=2)))
    assert top2 == pytest.approx({500: math.sqrt(12 / 64), 1000: 1.0})  # 64 and 12 kept, 4 and 1 dropped


def test_batch_equals_single_and_sparse_equals_dense():
    spectra = [_spectrum(PEAKS, index=0), _spectrum([(10.0, 3.0), (10.04, 1.0), (299.9, 2.0)], 299.0, 1)]
    spectra.append(_spectrum([(120.0, 7.0)], 500.0, 2))
    spec = BinningSpec(**SMALL, max_peaks=3)
    batch = featurize_spectra(spectra, spec)
    assert batch.shape == (3, 3000) and batch.dtype == np.float32
    for row, s in zip(batch, spectra, strict=True):
        np.testing.assert_array_equal(row, featurize_spectrum(s, spec))
    sparse = featurize_spectra(spectra, spec, sparse=True)
    np.testing.assert_array_equal(sparse.toarray(), batch)
    assert featurize_spectra([], spec).shape == (0, 3000)


@pytest.mark.parametrize(
    ("peaks", "precursor", "reason"),
    [
        ([(100.0, 0.0)], 200.0, "no peak with intensity > 0"),
        ([(500.0, 5.0)], 600.0, "no peak in the binned m/z range"),
        ([(250.0, 5.0)], 200.0, "no peak at or below the precursor"),
    ],
)
def test_nothing_left_is_an_error_not_a_zero_vector(peaks, precursor, reason):
    good = _spectrum([(100.0, 1.0)], 200.0, index=0)
    bad = _spectrum(peaks, precursor, index=7, title="empty one")
    with pytest.raises(SpectrumError) as info:
        featurize_spectra([good, bad], BinningSpec(**SMALL))
    assert reason in info.value.reason and (info.value.index, info.value.title) == (7, "empty one")


def test_no_precursor_with_precursor_filter_is_an_error():
    s = _spectrum([(100.0, 1.0)], None)
    with pytest.raises(SpectrumError, match="no precursor"):
        featurize_spectrum(s, BinningSpec(**SMALL))
    assert featurize_spectrum(s, BinningSpec(**SMALL, remove_above_precursor=False)).max() == 1.0


def test_spec_round_trip_and_validation():
    spec = BinningSpec()
    assert spec.n_bins == 11_000  # the paper's input size (Table A.8)
    again = BinningSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    custom = BinningSpec(min_mz=50, max_mz=1000, bin_width=0.5, intensity="log1p", max_peaks=60)
    assert BinningSpec.from_dict(json.loads(json.dumps(custom.to_dict()))) == custom and custom.n_bins == 1900
    for bad in (dict(intensity="cube"), dict(bin_width=0), dict(max_mz=100.05), dict(max_peaks=0)):
        with pytest.raises(ValueError):
            BinningSpec(**bad)
    with pytest.raises(ValueError, match="unknown binning settings"):
        BinningSpec.from_dict({**spec.to_dict(), "bins": 5})


def test_real_massbank_spectra(shared_data):
    spectra = list(itertools.islice(read_spectra(shared_data / "massbank/massbank-pos-ms2.mgf.gz"), 500))
    spec = BinningSpec()
    x = featurize_spectra(spectra, spec)
    assert x.shape == (500, 11_000)
    np.testing.assert_allclose(x.max(axis=1), 1.0)  # every spectrum keeps its base peak
    assert x.min() >= 0
    nonzero = (x > 0).sum(axis=1)
    peaks = np.array([s.n_peaks for s in spectra])
    assert (nonzero >= 1).all() and (nonzero <= peaks).all()
    # against a plain per-peak loop
    for row, s in zip(x[:100], spectra[:100], strict=True):
        bins: dict[int, float] = {}
        for mz, intensity in zip(s.mz, s.intensity, strict=True):
            if intensity > 0 and mz < 1100 and mz <= s.precursor_mz + 1.0:
                b = int(np.floor(round(mz / 0.1, 9)))
                bins[b] = bins.get(b, 0.0) + intensity
        top = max(bins.values())
        expected = np.zeros(11_000, np.float32)
        for b, v in bins.items():
            expected[b] = math.sqrt(v / top)
        np.testing.assert_allclose(row, expected, rtol=1e-6)
