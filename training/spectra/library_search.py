"""The library-search baseline: what a lab without any model does with its spectral library.

For a query spectrum, the ``k`` library spectra most similar to it by cosine similarity of the binned vectors
(the same featurization as the models) vote: the predicted fingerprint is the mean of their structures'
fingerprints (a bit's probability is the share of neighbours that have it), and candidates are ranked by
cross-entropy against it like a model's prediction. It learns nothing; its library is the paired (identified)
training spectra, exactly the data the MLP baseline learns from.

:func:`mix_predictions` averages a model's bit probabilities with these (beyond the paper).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

DEFAULT_K = 10


def _unit_rows(x: scipy.sparse.spmatrix | np.ndarray) -> scipy.sparse.csr_matrix:
    x = scipy.sparse.csr_matrix(x, dtype=np.float64)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return scipy.sparse.csr_matrix(scipy.sparse.diags(1.0 / norms) @ x)


def nearest_neighbours(
    queries: scipy.sparse.spmatrix | np.ndarray,
    library: scipy.sparse.spmatrix | np.ndarray,
    k: int = DEFAULT_K,
    batch_size: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, cosine similarities), each (n_queries, k), of the ``k`` library rows most similar to each query,
    most similar first (ties: the lower library row first)."""
    if library.shape[0] < k:
        raise ValueError(f"the library has {library.shape[0]} spectra, fewer than k = {k}")
    q, lib_t = _unit_rows(queries), _unit_rows(library).T.tocsc()
    idx = np.empty((q.shape[0], k), dtype=np.int64)
    sim = np.empty((q.shape[0], k))
    for start in range(0, q.shape[0], batch_size):
        s = (q[start : start + batch_size] @ lib_t).toarray()
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        top.sort(axis=1)  # ties: the lower library row first (argsort below is stable)
        order = np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable"), 1)
        idx[start : start + batch_size] = order
        sim[start : start + batch_size] = np.take_along_axis(s, order, axis=1)
    return idx, sim


def library_search_probs(
    queries: scipy.sparse.spmatrix | np.ndarray,
    library: scipy.sparse.spmatrix | np.ndarray,
    library_bits: np.ndarray,
    k: int = DEFAULT_K,
) -> np.ndarray:
    """Predicted fingerprints (n_queries, n_bits) float32: the mean bits of each query's ``k`` most cosine-similar
    library spectra; ``library_bits`` holds the fingerprint of each library spectrum's structure (one row each)."""
    library_bits = np.asarray(library_bits)
    if library_bits.shape[0] != library.shape[0]:
        raise ValueError(f"{library.shape[0]} library spectra but {library_bits.shape[0]} fingerprints")
    idx, _ = nearest_neighbours(queries, library, k)
    return library_bits[idx].astype(np.float32).mean(axis=1)


def mix_predictions(model_probs: np.ndarray, search_probs: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """``(1 - weight) * model + weight * library search``: the two predictions' bit probabilities averaged."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must lie in [0, 1], got {weight}")
    return ((1.0 - weight) * model_probs + weight * search_probs).astype(np.float32)
