"""Ranking candidate molecules by the cross-entropy between a predicted fingerprint and their fingerprint bits.

For predicted bit probabilities p (clipped to [eps, 1 - eps]) and a candidate's bits b:

    score(b) = -sum_k [b_k log p_k + (1 - b_k) log(1 - p_k)] = -(b . logit(p)) - sum_k log(1 - p_k)

so scoring N candidates is one matrix-vector product of their bits with the log-odds, plus a constant; lower is
better. How the product is computed depends on how the bits are held:
- :class:`~models.featurize.onbits.OnBits` (the positions of the set bits, how the candidate store lays out a search
  over all its candidates): a sparse matrix-vector product that reads each candidate's ~75 set positions once;
- numpy, packed (N, ceil(n_bits / 8)) uint8 (``pack_bits``, what a mass window of the store hands out) or unpacked
  (N, n_bits) 0/1: unpacked a block of rows at a time and multiplied with the log-odds (a dense matrix-vector
  product; for a window of a few candidates 15-20x faster than making ``OnBits`` of them first);
- scipy.sparse (N, n_bits): a sparse matrix-vector product;
- torch tensors (any device, packed or not): unpacked in chunks on the tensors' device, then a float32 matmul
  (a CPU tensor goes through the numpy path instead, which is several times faster there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse
import torch

from models.featurize.onbits import OnBits

EPS = 1e-6
# Scores this close (relative) count as equal in ranking, so float rounding never breaks a tie between identical
# fingerprints (for example stereoisomers, which share Morgan bits).
TIE_RTOL = 1e-6
_BLOCK_VALUES = 1 << 19  # bits unpacked at a time by the numpy path: a 4 MB float64 temporary at most


def _log_odds(pred_prob: np.ndarray, eps: float) -> tuple[np.ndarray, float]:
    """(logit(p), sum log(1 - p)) in float64, p clipped to [eps, 1 - eps]."""
    p = np.clip(np.asarray(pred_prob, dtype=np.float64), eps, 1 - eps)
    log1m = np.log1p(-p)
    return np.log(p) - log1m, float(log1m.sum())


def _torch_scores(pred_prob: torch.Tensor, cand_bits: torch.Tensor, eps: float, packed: bool) -> torch.Tensor:
    n_bits = pred_prob.shape[-1]
    # log-odds in float64 (float32 cannot hold 1 - eps precisely), the product over candidates in float32
    p = pred_prob.detach().double().clamp(eps, 1 - eps)
    log1m = torch.log1p(-p)
    logit = (torch.log(p) - log1m).float().to(cand_bits.device)
    const = log1m.sum().float().to(cand_bits.device)
    shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=cand_bits.device)
    out = torch.empty(len(cand_bits), dtype=torch.float32, device=cand_bits.device)
    chunk = 16_384
    for start in range(0, len(cand_bits), chunk):
        block = cand_bits[start : start + chunk]
        if packed:
            block = ((block.unsqueeze(-1) >> shifts) & 1).reshape(len(block), -1)[:, :n_bits]
        out[start : start + chunk] = block.float() @ logit
    return -out - const


def _is_packed(n_columns: int, n_bits: int) -> bool:
    if n_columns == n_bits:
        return False
    if n_columns == (n_bits + 7) // 8:
        return True
    raise ValueError(f"candidate bits have {n_columns} columns: neither {n_bits} bits nor {(n_bits + 7) // 8} bytes")


def candidate_scores(
    pred_prob: np.ndarray | torch.Tensor,
    cand_bits: OnBits | np.ndarray | torch.Tensor | scipy.sparse.spmatrix,
    *,
    eps: float = EPS,
    backend: str = "auto",
) -> np.ndarray | torch.Tensor:
    """Cross-entropy of each candidate's bits against the predicted bit probabilities; lower is better.

    Args:
        pred_prob: (n_bits,) predicted probabilities that each bit is set.
        cand_bits: :class:`OnBits`, or (N, n_bits) 0/1 bits, or (N, ceil(n_bits / 8)) bytes from ``pack_bits``
            (told apart by the number of columns), or a scipy.sparse (N, n_bits) matrix.
        eps: probabilities are clipped to [eps, 1 - eps] so that a confident wrong bit costs -log(eps), not inf.
        backend: "auto" (torch for tensors on a GPU, numpy otherwise), "torch" or "numpy".

    Returns:
        (N,) float64 numpy scores, or float32 torch scores on the bits' device from the torch backend.
    """
    if backend not in ("auto", "torch", "numpy"):
        raise ValueError(f"backend {backend!r} is not one of auto, torch, numpy")
    on_gpu = isinstance(cand_bits, torch.Tensor) and cand_bits.device.type != "cpu"
    if backend == "torch" or (backend == "auto" and on_gpu):
        pred = torch.as_tensor(pred_prob)
        bits = torch.as_tensor(cand_bits)
        return _torch_scores(pred, bits, eps, _is_packed(bits.shape[1], pred.shape[-1]))
    if isinstance(pred_prob, torch.Tensor):
        pred_prob = pred_prob.detach().cpu().numpy()
    if isinstance(cand_bits, torch.Tensor):
        cand_bits = cand_bits.cpu().numpy()
    logit, const = _log_odds(pred_prob, eps)
    if isinstance(cand_bits, OnBits):
        return -cand_bits.dot(logit) - const
    if scipy.sparse.issparse(cand_bits):
        return -np.asarray(cand_bits @ logit, dtype=np.float64).ravel() - const
    cand_bits = np.asarray(cand_bits)
    if cand_bits.ndim != 2:
        raise ValueError(f"candidate bits must be 2-D (N, bits), got shape {cand_bits.shape}")
    return -_bits_dot(cand_bits, logit, _is_packed(cand_bits.shape[1], len(logit))) - const


def _bits_dot(bits: np.ndarray, weights: np.ndarray, packed: bool) -> np.ndarray:
    """(N,) float64: each row's sum of ``weights`` over its set bits, for packed bytes or 0/1 rows, a block of rows
    at a time."""
    out = np.empty(len(bits))
    step = max(1, _BLOCK_VALUES // len(weights))
    for first in range(0, len(bits), step):
        block = bits[first : first + step]
        if packed:
            block = np.unpackbits(block, axis=1, count=len(weights))
        np.matmul(block, weights, out=out[first : first + step])
    return out


def rank_candidates(
    pred_prob: np.ndarray | torch.Tensor,
    cand_bits: OnBits | np.ndarray | torch.Tensor | scipy.sparse.spmatrix,
    top_k: int | None = None,
    *,
    eps: float = EPS,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``top_k`` candidates (all when None): (indices best first, their scores), numpy.

    Equal scores keep the candidates' input order (a stable sort).
    """
    scores = candidate_scores(pred_prob, cand_bits, eps=eps, backend=backend)
    if isinstance(scores, torch.Tensor):
        scores = scores.double().cpu().numpy()
    order = best_first(scores, top_k)
    return order, scores[order]


def best_first(scores: np.ndarray, top_k: int | None = None) -> np.ndarray:
    """Indices of the ``top_k`` lowest scores (all when None), lowest first, equal scores in index order: the
    first ``top_k`` of a stable argsort, found in linear time when ``top_k`` is small against ``len(scores)``
    (a search over a whole lab-sized database would otherwise sort millions of scores to keep ten)."""
    if top_k is None or top_k >= len(scores) // 4:
        return np.argsort(scores, kind="stable")[:top_k]
    kth = np.partition(scores, top_k - 1)[top_k - 1]
    kept = np.flatnonzero(scores <= kth)  # ascending indices: the stable sort below keeps ties in index order
    return kept[np.argsort(scores[kept], kind="stable")][:top_k]


def rank_of_true(
    scores: np.ndarray | torch.Tensor, true_index: int | Sequence[int] | np.ndarray, *, rtol: float = TIE_RTOL
) -> int:
    """1-based rank of the true candidate, ties counted pessimistically.

    rank = 1 + the number of other candidates whose score is better than or tied with the true one's (ties: within
    ``rtol`` relative), so a true structure tied with k others ranks k + 1, as if it came last among them.
    ``true_index`` may list several candidates that all count as correct (e.g. every candidate with the true
    structure's first InChIKey block); then the best-scoring of them is the true one and the others are not counted
    against it.
    """
    scores = scores.double().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores, np.float64)
    is_true = np.zeros(len(scores), dtype=bool)
    is_true[np.atleast_1d(np.asarray(true_index, dtype=np.intp))] = True
    if not is_true.any():
        raise ValueError("no true candidate given")
    best = scores[is_true].min()
    tol = rtol * max(1.0, abs(best))
    return 1 + int(np.count_nonzero(scores[~is_true] <= best + tol))


def fingerprint_quality(
    pred_probs: np.ndarray | torch.Tensor, true_bits: np.ndarray | torch.Tensor, *, threshold: float = 0.5
) -> dict[str, float]:
    """How well predicted fingerprints match the true ones, over Q queries.

    Returns:
        mean_bit_auc: per-bit ROC AUC (Mann-Whitney, ties averaged) of the Q predictions against the true bit,
            averaged over the bits that are set in some but not all queries (``n_bits_auc`` of them);
        mean_tanimoto: mean Tanimoto similarity of the prediction thresholded at ``threshold`` and the true bits
            (1.0 when both are empty).
    """
    pred = np.asarray(pred_probs.detach().cpu() if isinstance(pred_probs, torch.Tensor) else pred_probs, np.float64)
    true = np.asarray(true_bits.cpu() if isinstance(true_bits, torch.Tensor) else true_bits).astype(bool)
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(f"need two (Q, n_bits) arrays of one shape, got {pred.shape} and {true.shape}")
    import scipy.stats  # here, not at the top: the service never needs it, and it is a fifth of its import time

    ranks = scipy.stats.rankdata(pred, axis=0)
    n_pos = true.sum(axis=0)
    n_neg = len(true) - n_pos
    valid = (n_pos > 0) & (n_neg > 0)
    rank_sum = np.where(true, ranks, 0.0).sum(axis=0)
    auc = (rank_sum[valid] - n_pos[valid] * (n_pos[valid] + 1) / 2) / (n_pos[valid] * n_neg[valid])
    predicted = pred >= threshold
    inter = (predicted & true).sum(axis=1)
    union = (predicted | true).sum(axis=1)
    tanimoto = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return {
        "mean_bit_auc": float(auc.mean()) if valid.any() else float("nan"),
        "mean_tanimoto": float(tanimoto.mean()) if len(tanimoto) else float("nan"),
        "n_bits_auc": int(valid.sum()),
    }


@dataclass
class RetrievalReport:
    """Retrieval results over n queries: top-k counts and rates, ranks, candidates per query, fingerprint quality."""

    n: int
    top1: int
    top5: int
    top10: int
    top20: int
    mean_rank: float | None
    median_rank: float | None
    n_candidates_mean: float | None
    top1_rate: float | None = None
    top5_rate: float | None = None
    top10_rate: float | None = None
    top20_rate: float | None = None
    mean_bit_auc: float | None = None
    mean_tanimoto: float | None = None

    @classmethod
    def from_ranks(
        cls, ranks: Sequence[int], n_candidates: Sequence[int], quality: dict[str, float] | None = None
    ) -> RetrievalReport:
        """Report from the 1-based rank of each query's true structure and each query's number of candidates."""
        r = np.asarray(ranks, dtype=np.float64)
        n = len(r)
        if len(n_candidates) != n:
            raise ValueError(f"{n} ranks but {len(n_candidates)} candidate counts")
        counts = {k: int(np.count_nonzero(r <= k)) for k in (1, 5, 10, 20)}
        return cls(
            n=n,
            top1=counts[1],
            top5=counts[5],
            top10=counts[10],
            top20=counts[20],
            mean_rank=float(r.mean()) if n else None,
            median_rank=float(np.median(r)) if n else None,
            n_candidates_mean=float(np.mean(n_candidates)) if n else None,
            top1_rate=counts[1] / n if n else None,
            top5_rate=counts[5] / n if n else None,
            top10_rate=counts[10] / n if n else None,
            top20_rate=counts[20] / n if n else None,
            mean_bit_auc=(quality or {}).get("mean_bit_auc"),
            mean_tanimoto=(quality or {}).get("mean_tanimoto"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self, title: str | None = None) -> str:
        """A Markdown table: top-k counts with rates, ranks, candidates and fingerprint quality."""

        def num(x: float | None, fmt: str = ".2f") -> str:
            return "-" if x is None else format(x, fmt)

        lines = [f"### {title}", ""] if title else []
        lines += [
            "| queries | top 1 | top 5 | top 10 | top 20 | mean rank | median rank | candidates / query "
            "| mean bit AUC | mean Tanimoto |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {self.n} "
            + "".join(
                f"| {count} ({num(None if rate is None else 100 * rate, '.1f')}%) "
                for count, rate in [
                    (self.top1, self.top1_rate),
                    (self.top5, self.top5_rate),
                    (self.top10, self.top10_rate),
                    (self.top20, self.top20_rate),
                ]
            )
            + f"| {num(self.mean_rank, '.1f')} | {num(self.median_rank, '.1f')} | {num(self.n_candidates_mean, '.1f')} "
            f"| {num(self.mean_bit_auc, '.3f')} | {num(self.mean_tanimoto, '.3f')} |",
        ]
        return "\n".join(lines) + "\n"
