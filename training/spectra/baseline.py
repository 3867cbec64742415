"""The baselines the VAEs are measured against, in the same evaluation.

- ``mlp``: a feed-forward spectrum -> fingerprint network with the VAEs' spectrum encoder body and one linear
  layer to the bits, trained with binary cross-entropy on the paired spectra only
  (:class:`models.spectra_model.FingerprintMLP`; ``train_one("mlp", ...)`` trains it with the same trainer,
  data, selection and test as the VAEs).
- random ranking: the true structure at a uniformly random rank among a query's n candidates. Its numbers are
  the exact expectations, not a draw: P(rank <= k) = min(k, n) / n, E[rank] = (n + 1) / 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def random_ranking_report(n_candidates: Sequence[int]) -> dict[str, Any]:
    """Expected retrieval report (same keys as ``RetrievalReport``) of uniformly random ranking for queries with
    these candidate counts; top-k "counts" are expected numbers of queries (not integers)."""
    n = np.asarray(n_candidates, dtype=np.float64)
    if (n < 1).any():
        raise ValueError("every query needs at least one candidate")
    q = len(n)
    out: dict[str, Any] = {"n": q}
    for k in (1, 5, 10, 20):
        hits = float(np.sum(np.minimum(k, n) / n)) if q else 0.0
        out[f"top{k}"] = hits
        out[f"top{k}_rate"] = hits / q if q else None
    # the median of a uniform rank over 1..n is (n + 1) / 2 as well; the median over queries of those
    out["mean_rank"] = float(np.mean((n + 1) / 2)) if q else None
    out["median_rank"] = float(np.median((n + 1) / 2)) if q else None
    out["n_candidates_mean"] = float(n.mean()) if q else None
    out["mean_bit_auc"] = 0.5
    out["mean_tanimoto"] = None
    return out
