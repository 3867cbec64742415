"""The formula retrieval protocol (the one SIRIUS/CSI:FingerID and CASMI use): the query's molecular formula is
known, and its candidates are every distinct structure of that formula in a large structure library
(:mod:`training.spectra.library`), the true structure included (added, and counted as ``true_added``, when the
library lacks it). Candidates are ranked by the cross-entropy between the predicted fingerprint and their bits
(:mod:`models.retrieval`); ties count against the query.

The spectrum-blind baseline ranks the same candidates against one fixed "prediction", the mean fingerprint of the
training structures: whatever it gets right comes from the candidate set (typical structures of a formula look like
training structures), not from the spectrum. A model is worth its spectrum only by what it adds to that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.featurize.fingerprints import FingerprintSpec, fingerprint_bits, pack_bits, parse_fingerprint_spec
from models.retrieval import RetrievalReport, candidate_scores, fingerprint_quality, rank_of_true
from training.spectra.library import FormulaCandidates, StructureLibrary

PROTOCOL_NAME = "formula"
TOPK_MAX = 20


@dataclass(frozen=True)
class FormulaQuery:
    """What the protocol knows of one query besides its spectrum: its formula, and its true structure (first
    InChIKey block and a SMILES) for scoring."""

    formula: str
    true_block: str
    true_smiles: str


@dataclass
class FormulaRanks:
    """Per query: the 1-based rank of the true structure, the number of candidates and whether the true structure
    had to be added to the library's candidates."""

    ranks: np.ndarray
    n_candidates: np.ndarray
    true_added: np.ndarray

    def topk_counts(self, k_max: int = TOPK_MAX) -> list[int]:
        """Number of queries with the true structure within the top k, for k = 1 ... ``k_max`` (Figure 11)."""
        return [int(np.count_nonzero(self.ranks <= k)) for k in range(1, k_max + 1)]

    def random_topk_counts(self, k_max: int = TOPK_MAX) -> list[float]:
        """Expected :meth:`topk_counts` of a random ranking of the same candidate sets: sum of min(k, n) / n."""
        n = self.n_candidates.astype(np.float64)
        return [float(np.sum(np.minimum(k, n) / n)) for k in range(1, k_max + 1)]


class CandidateSets:
    """Formula candidates of a library for one fingerprint spec, each formula loaded once per evaluation."""

    def __init__(self, library: StructureLibrary, spec: FingerprintSpec | str):
        self.library = library
        self.spec = parse_fingerprint_spec(spec)
        self._sets: dict[str, FormulaCandidates] = {}

    def __call__(self, formula: str) -> FormulaCandidates:
        if formula not in self._sets:
            self._sets[formula] = self.library.formula_candidates(formula, self.spec)
        return self._sets[formula]


def formula_ranks(probs: np.ndarray, queries: Sequence[FormulaQuery], candidates: CandidateSets) -> FormulaRanks:
    """Rank each query's true structure among the library structures of its formula.

    Args:
        probs: (Q, n_bits) predicted bit probabilities, one row per query (one row broadcast to every query for the
            spectrum-blind baseline is allowed: shape (1, n_bits)).
        queries: the Q queries' formulas and true structures.
        candidates: the library's formula candidate sets for the fingerprint spec of ``probs``.
    """
    probs = np.asarray(probs)
    if probs.shape[0] not in (1, len(queries)):
        raise ValueError(f"{probs.shape[0]} predictions for {len(queries)} queries")
    ranks, sizes, added = [], [], []
    for i, q in enumerate(queries):
        cands = candidates(q.formula)
        packed, true_index = cands.packed_bits, int(np.searchsorted(cands.blocks, q.true_block))
        missing = true_index >= len(cands) or cands.blocks[true_index] != q.true_block
        if missing:
            true_bits = pack_bits(fingerprint_bits([q.true_smiles], candidates.spec))
            packed, true_index = np.concatenate([packed, true_bits]), len(cands)
        scores = candidate_scores(probs[i if len(probs) > 1 else 0], packed)
        ranks.append(rank_of_true(scores, true_index))
        sizes.append(len(packed))
        added.append(missing)
    return FormulaRanks(np.array(ranks, np.int64), np.array(sizes, np.int64), np.array(added, bool))


def formula_report(ranks: FormulaRanks, quality: dict[str, float] | None = None) -> dict[str, Any]:
    """The evaluate-retrieval report of formula ranks, plus ``true_added``, ``protocol`` and the top-k curve."""
    report = RetrievalReport.from_ranks(ranks.ranks.tolist(), ranks.n_candidates.tolist(), quality).to_dict()
    return {
        **report,
        "true_added": int(ranks.true_added.sum()),
        "topk_counts": ranks.topk_counts(),
        "single_candidate_queries": int(np.count_nonzero(ranks.n_candidates == 1)),
        "median_candidates": float(np.median(ranks.n_candidates)) if len(ranks.n_candidates) else None,
        "random_topk_counts": ranks.random_topk_counts(),
        "protocol": "every library structure (first InChIKey block) of the query's molecular formula, true "
        "structure included",
    }


def true_bits(queries: Sequence[FormulaQuery], spec: FingerprintSpec | str) -> np.ndarray:
    """Fingerprint bits (Q, n_bits) of the queries' true structures."""
    return fingerprint_bits([q.true_smiles for q in queries], spec)


def evaluate_formula(
    probs: np.ndarray, queries: Sequence[FormulaQuery], candidates: CandidateSets, mean_fingerprint: np.ndarray
) -> dict[str, dict[str, Any]]:
    """The formula protocol for a model's predictions and for the spectrum-blind baseline on the same queries.

    Returns ``{"model": report, "spectrum_blind": report}`` (reports of :func:`formula_report`; the model's with
    the fingerprint quality of ``probs``).
    """
    quality = fingerprint_quality(probs, true_bits(queries, candidates.spec)) if len(queries) else None
    model = formula_report(formula_ranks(probs, queries, candidates), quality)
    blind = formula_report(formula_ranks(np.asarray(mean_fingerprint)[None, :], queries, candidates))
    blind["protocol"] += "; ranked against the mean training fingerprint (no spectrum)"
    return {"model": model, "spectrum_blind": blind}


def flat_formula_metrics(report: dict[str, Any]) -> dict[str, float]:
    """``formula_<key>`` rates, ranks and candidates per query of a report, as in ``reports/spectra.json``."""
    keys = ("top1_rate", "top5_rate", "top10_rate", "top20_rate", "mean_rank", "median_rank", "n_candidates_mean")
    return {f"{PROTOCOL_NAME}_{k}": float(report[k]) for k in keys if report.get(k) is not None}
