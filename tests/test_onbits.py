"""Fingerprints as set positions (``OnBits``): round trips with the dense and packed layouts, slices and gathers,
and rankings identical to the straightforward cross-entropy on real RDKit fingerprints of MassBank molecules."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from models.featurize.fingerprints import fingerprint_bits, pack_bits
from models.featurize.mgf import Spectrum, read_spectra
from models.featurize.onbits import OnBits
from models.retrieval import EPS, candidate_scores, rank_candidates


@pytest.fixture(scope="module")
def real_bits(shared_data: Path) -> np.ndarray:
    """Default-spec fingerprints (N, 2215) of the distinct structures of the first 3,000 MassBank spectra."""
    spectra = itertools.islice(read_spectra(shared_data / "massbank" / "massbank-pos-ms2.mgf.gz"), 3000)
    smiles = list(dict.fromkeys(s.smiles for s in spectra if isinstance(s, Spectrum) and s.smiles))
    return fingerprint_bits(smiles)


def _straightforward(p: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """The cross-entropy as written: -sum_k b_k log p_k + (1 - b_k) log(1 - p_k), p clipped."""
    p = np.clip(p, EPS, 1 - EPS)
    return -(bits * np.log(p) + (1 - bits) * np.log(1 - p)).sum(axis=1)


def test_round_trips(real_bits):
    on = OnBits.from_dense(real_bits)
    assert len(on) == len(real_bits) and on.n_bits == real_bits.shape[1]
    np.testing.assert_array_equal(on.to_dense(), real_bits)
    np.testing.assert_array_equal(OnBits.from_packed(pack_bits(real_bits), real_bits.shape[1]).to_dense(), real_bits)
    np.testing.assert_array_equal(on.to_packed(), pack_bits(real_bits))
    np.testing.assert_array_equal(on.row(5), np.flatnonzero(real_bits[5]))
    assert on.indices.dtype == np.int32 and on.indptr.dtype == np.int64


def test_slices_gathers_and_concatenation(real_bits):
    on = OnBits.from_dense(real_bits)
    view = on[100:250]
    assert view.indices is on.indices  # a view, not a copy
    np.testing.assert_array_equal(view.to_dense(), real_bits[100:250])
    rows = np.array([7, 3, 3, 400, 0])
    np.testing.assert_array_equal(on[rows].to_dense(), real_bits[rows])
    np.testing.assert_array_equal(on[rows].indptr[0], 0)
    joined = OnBits.concatenate([on[10:20], on[rows], OnBits.empty(on.n_bits), on[:3]])
    np.testing.assert_array_equal(joined.to_dense(), np.concatenate([real_bits[10:20], real_bits[rows], real_bits[:3]]))
    assert len(on[5:5]) == 0 and len(on[5:5].dot(np.ones(on.n_bits))) == 0
    with pytest.raises(ValueError, match="weights"):
        on.dot(np.ones(3))


def test_rankings_identical_to_the_straightforward_formula(real_bits):
    """Predictions with distinct scores for distinct fingerprints: the very same order, every layout."""
    rng = np.random.default_rng(0)
    on = OnBits.from_dense(real_bits)
    for p in (rng.random(real_bits.shape[1]), rng.random(real_bits.shape[1]) ** 8):
        expected = _straightforward(p, real_bits)
        want = np.argsort(expected, kind="stable")
        for layout in (on, real_bits, pack_bits(real_bits)):
            scores = candidate_scores(p, layout)
            np.testing.assert_allclose(scores, expected, rtol=1e-10)
            np.testing.assert_array_equal(np.argsort(scores, kind="stable"), want)
        order, _ = rank_candidates(p, on[50:], top_k=20)
        np.testing.assert_array_equal(order, np.argsort(expected[50:], kind="stable")[:20])


def test_rankings_with_exact_ties(real_bits):
    """A prediction of only two values makes distinct fingerprints tie exactly (same number of mismatches); the
    order agrees with the formula up to rounding, and identical fingerprints keep their input order."""
    on = OnBits.from_dense(real_bits)
    p = np.where(real_bits[0] == 1, 0.999, 0.001)
    expected = _straightforward(p, real_bits)
    scores = candidate_scores(p, on)
    order = np.argsort(scores, kind="stable")
    assert np.all(np.diff(expected[order]) >= -1e-9 * expected.max())
    _, first = np.unique(real_bits, axis=0, return_index=True)
    duplicates = np.setdiff1d(np.arange(len(real_bits)), first)
    assert len(duplicates) > 0  # stereoisomers share their fingerprint
    for row in duplicates:
        same = np.flatnonzero((real_bits == real_bits[row]).all(axis=1))
        assert len(set(scores[same])) == 1
        positions = [np.flatnonzero(order == j)[0] for j in same]
        assert positions == sorted(positions)


def test_scores_chunked_like_unchunked(real_bits, monkeypatch):
    """Stores larger than one chunk of rows score and gather as in one piece."""
    import models.featurize.onbits as onbits

    p = np.random.default_rng(1).random(real_bits.shape[1])
    whole = candidate_scores(p, OnBits.from_dense(real_bits))
    monkeypatch.setattr(onbits, "_CHUNK_ROWS", 97)
    np.testing.assert_array_equal(candidate_scores(p, OnBits.from_dense(real_bits)), whole)
    rows = np.random.default_rng(2).permutation(len(real_bits))  # a gather of many pieces
    np.testing.assert_array_equal(OnBits.from_dense(real_bits)[rows].to_dense(), real_bits[rows])
