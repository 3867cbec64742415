"""Ranking by cross-entropy: the vectorized score against the per-candidate formula, every bit layout and backend,
ranks with ties, fingerprint quality against hand-computed values, and the report."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import torch

from models.featurize.fingerprints import pack_bits
from models.retrieval import (
    RetrievalReport,
    best_first,
    candidate_scores,
    fingerprint_quality,
    rank_candidates,
    rank_of_true,
)

N_BITS = 2215


def _loop_scores(p, bits, eps=1e-6):
    """The definition, one candidate and one bit at a time."""
    p = [min(max(x, eps), 1 - eps) for x in p]
    out = []
    for row in bits:
        total = 0.0
        for b, pk in zip(row, p, strict=True):
            total -= np.log(pk) if b else np.log(1 - pk)
        out.append(total)
    return np.array(out)


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(1)
    p = rng.random(N_BITS)
    p[:5] = [0.0, 1.0, 1e-9, 1 - 1e-9, 0.5]  # clipping at both ends
    bits = (rng.random((60, N_BITS)) < 0.1).astype(np.uint8)
    bits[7] = bits[3]  # identical fingerprints (e.g. stereoisomers)
    return p, bits, _loop_scores(p, bits)


def test_scores_match_the_definition_for_every_layout(case):
    p, bits, expected = case
    layouts = {
        "unpacked": bits,
        "packed": pack_bits(bits),
        "sparse": scipy.sparse.csr_matrix(bits),
        "torch unpacked": torch.from_numpy(bits),
        "torch packed": torch.from_numpy(pack_bits(bits)),
    }
    for name, cand in layouts.items():
        scores = candidate_scores(p, cand)
        assert isinstance(scores, np.ndarray), name
        np.testing.assert_allclose(scores, expected, rtol=1e-12, err_msg=name)
    for name in ("torch unpacked", "torch packed"):  # the GPU code path, run on CPU tensors
        scores = candidate_scores(torch.from_numpy(p), layouts[name], backend="torch")
        assert isinstance(scores, torch.Tensor) and scores.dtype == torch.float32
        np.testing.assert_allclose(scores.numpy(), expected, rtol=2e-6, err_msg=name)
    assert candidate_scores(p, bits)[3] == candidate_scores(p, bits)[7]


def test_numpy_layouts_over_several_blocks_of_rows(case):
    # 600 rows of 2,215 bits are unpacked in three blocks; rows far apart with the same bits score the same
    p, bits, _ = case
    many = np.concatenate([bits] * 10)
    expected = candidate_scores(p, scipy.sparse.csr_matrix(many))
    for cand in (many, pack_bits(many)):
        scores = candidate_scores(p, cand)
        np.testing.assert_allclose(scores, expected, rtol=1e-12)
        assert scores[3] == scores[7] == scores[3 + 540]


def test_score_is_a_product_plus_a_constant(case):
    """``candidate_scores`` is affine in the bits: the empty fingerprint scores the constant -sum log(1 - p) and
    each set bit k adds -logit(p_k), so any candidate scores the constant plus a product with its bits."""
    p, bits, _ = case
    q = np.clip(p, 1e-6, 1 - 1e-6)
    base = candidate_scores(p, np.zeros((1, N_BITS), np.uint8))[0]
    per_bit = candidate_scores(p, pack_bits(np.eye(N_BITS, dtype=np.uint8))) - base  # one bit set at a time
    np.testing.assert_allclose(base, -np.log1p(-q).sum(), rtol=1e-12)
    np.testing.assert_allclose(per_bit, -np.log(q / (1 - q)), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(candidate_scores(p, bits), base + bits @ per_bit, rtol=1e-10)


def test_bad_shapes():
    with pytest.raises(ValueError, match="columns"):
        candidate_scores(np.full(20, 0.5), np.zeros((3, 7), np.uint8))
    with pytest.raises(ValueError, match="backend"):
        candidate_scores(np.full(8, 0.5), np.zeros((3, 8), np.uint8), backend="jax")


def test_rank_candidates_order_and_ties(case):
    p, bits, expected = case
    order, scores = rank_candidates(p, pack_bits(bits), top_k=10)
    assert len(order) == 10
    np.testing.assert_array_equal(order, np.argsort(expected, kind="stable")[:10])
    np.testing.assert_allclose(scores, np.sort(expected)[:10], rtol=1e-12)
    full, _ = rank_candidates(p, bits)
    assert len(full) == len(bits) and list(full).index(3) < list(full).index(7)  # stable: input order on ties


def test_best_first_is_the_head_of_a_stable_argsort():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 50, size=5000).astype(np.float64)  # many ties, also across the k-th score
    for k in (1, 7, 10, 100, 1249, 5000, None):
        np.testing.assert_array_equal(best_first(scores, k), np.argsort(scores, kind="stable")[:k])
    assert len(best_first(np.empty(0), 10)) == 0


def test_rank_of_true_pessimistic_ties():
    scores = np.array([5.0, 1.0, 3.0, 3.0, 3.0 + 1e-9, 7.0])
    assert rank_of_true(scores, 1) == 1
    assert rank_of_true(scores, 0) == 5  # 1.0 and the three ~3.0 are better
    assert rank_of_true(scores, 2) == 4  # tied with 3 and 4 (within tolerance): counted as last of the three
    assert rank_of_true(scores, 5) == 6
    assert rank_of_true(scores, [2, 3]) == 3  # both true: only candidate 1 and the tie with 4 count
    assert rank_of_true(torch.tensor(scores), 2) == 4
    with pytest.raises(ValueError):
        rank_of_true(scores, [])


def test_fingerprint_quality_by_hand():
    # one bit over 4 queries: positives score 0.35 and 0.8, negatives 0.1 and 0.4 -> 3 of 4 pairs ordered: AUC 0.75
    pred = np.array([[0.1, 0.9], [0.4, 0.8], [0.35, 0.1], [0.8, 0.2]])
    true = np.array([[0, 1], [0, 0], [1, 0], [1, 1]])
    q = fingerprint_quality(pred, true)
    # bit 2: positives 0.9, 0.2; negatives 0.8, 0.1 -> pairs (0.9>0.8, 0.9>0.1, 0.2<0.8, 0.2>0.1): 0.75
    assert q["mean_bit_auc"] == pytest.approx(0.75)
    # thresholded at 0.5: [0,1] vs [0,1] -> 1; [0,1] vs [0,0] -> 0; [0,0] vs [1,0] -> 0; [1,0] vs [1,1] -> 1/2
    assert q["mean_tanimoto"] == pytest.approx((1 + 0 + 0 + 0.5) / 4)
    assert q["n_bits_auc"] == 2
    perfect = fingerprint_quality(true.astype(float), true)
    assert perfect["mean_bit_auc"] == 1.0 and perfect["mean_tanimoto"] == 1.0
    assert fingerprint_quality(1.0 - true, true)["mean_bit_auc"] == 0.0
    constant = fingerprint_quality(pred, np.c_[true[:, 0], np.ones(4)])  # an always-set bit has no AUC
    assert constant["n_bits_auc"] == 1 and constant["mean_bit_auc"] == pytest.approx(0.75)


def test_report():
    report = RetrievalReport.from_ranks([1, 3, 7, 30, 12], [10, 20, 30, 40, 50], {"mean_bit_auc": 0.9})
    d = report.to_dict()
    assert {k: d[k] for k in ("n", "top1", "top5", "top10", "top20")} == {
        "n": 5,
        "top1": 1,
        "top5": 2,
        "top10": 3,
        "top20": 4,
    }
    assert (d["mean_rank"], d["median_rank"], d["n_candidates_mean"]) == (10.6, 7.0, 30.0)
    assert d["top20_rate"] == 0.8 and d["mean_bit_auc"] == 0.9 and d["mean_tanimoto"] is None
    md = report.to_markdown("test split")
    assert "### test split" in md and "| 5 | 1 (20.0%) | 2 (40.0%) | 3 (60.0%) | 4 (80.0%) | 10.6 | 7.0 | 30.0" in md
    empty = RetrievalReport.from_ranks([], [])
    assert empty.n == 0 and empty.mean_rank is None
