"""Retrieval evaluation on MassBank queries against the pool of all MassBank structures.

Each query spectrum's candidates are the true structure plus decoys from the pool (every structure of the file,
all splits), chosen by one of two protocols:

- ``ppm``: the structures whose monoisotopic mass is within ``ppm`` of the query's neutral mass (from precursor
  m/z and adduct), as a lab searches a database; the true structure is added when the precursor m/z puts it
  outside the window (counted as ``true_added``). With ~4,200 structures this leaves few candidates per query.
- ``nearest``: the ``n`` structures nearest in mass to the query's neutral mass, the true one included (it replaces
  the farthest when it is not among them): a fixed-size, mass-matched decoy set like MassSpecGym's 256.

Candidates are ranked by cross-entropy against the predicted fingerprint (``models.retrieval``); the true rank
counts ties against the query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from models.featurize.adducts import ppm_window
from models.featurize.fingerprints import pack_bits
from models.retrieval import RetrievalReport, candidate_scores, fingerprint_quality, rank_of_true
from training.spectra.data import Structures


@dataclass(frozen=True)
class Protocol:
    """How candidates are drawn from the pool: ``kind`` "ppm" (with ``ppm``) or "nearest" (with ``n``)."""

    kind: str
    ppm: float = 10.0
    n: int = 256

    @property
    def name(self) -> str:
        return f"ppm{self.ppm:g}" if self.kind == "ppm" else f"nearest{self.n}"

    def describe(self) -> str:
        if self.kind == "ppm":
            return f"pool structures within {self.ppm:g} ppm of the query's neutral mass, true structure added"
        return f"the {self.n} pool structures nearest in mass to the query's neutral mass, true structure included"


DEFAULT_PROTOCOLS = (Protocol("ppm", ppm=10.0), Protocol("nearest", n=256))


def candidate_rows(masses: np.ndarray, query_mass: float, true_row: int, protocol: Protocol) -> tuple[np.ndarray, bool]:
    """Pool rows of one query's candidates (ascending mass order for "ppm") and whether the true row was added."""
    if protocol.kind == "ppm":
        low, high = ppm_window(query_mass, protocol.ppm)
        rows = np.arange(np.searchsorted(masses, low, "left"), np.searchsorted(masses, high, "right"))
        if true_row in rows:
            return rows, False
        return np.append(rows, true_row), True
    if protocol.kind != "nearest":
        raise ValueError(f"unknown candidate protocol {protocol.kind!r}")
    pos = int(np.searchsorted(masses, query_mass))
    window = np.arange(max(0, pos - protocol.n), min(len(masses), pos + protocol.n))
    rows = window[np.argsort(np.abs(masses[window] - query_mass), kind="stable")[: protocol.n]]
    if true_row in rows:
        return rows, False
    rows = rows.copy()
    rows[-1] = true_row
    return rows, True


def query_ranks(
    probs: np.ndarray, true_rows: np.ndarray, query_masses: np.ndarray, structures: Structures, protocol: Protocol
) -> tuple[np.ndarray, np.ndarray, int]:
    """(rank of the true structure per query, candidates per query, how many queries had the true one added)."""
    packed = pack_bits(structures.bits)
    ranks, sizes, added = [], [], 0
    for p, true_row, mass in zip(probs, true_rows, query_masses, strict=True):
        rows, was_added = candidate_rows(structures.masses, mass, int(true_row), protocol)
        scores = candidate_scores(p, packed[rows])
        ranks.append(rank_of_true(scores, int(np.flatnonzero(rows == true_row)[0])))
        sizes.append(len(rows))
        added += was_added
    return np.asarray(ranks, dtype=np.int64), np.asarray(sizes, dtype=np.int64), added


def pool_retrieval(
    probs: np.ndarray,
    true_rows: np.ndarray,
    query_masses: np.ndarray,
    structures: Structures,
    protocols: tuple[Protocol, ...] = DEFAULT_PROTOCOLS,
    *,
    with_ranks: bool = False,
) -> dict[str, dict[str, Any]]:
    """Rank each query's true structure among its candidates, for each protocol.

    Returns ``{protocol name: RetrievalReport dict + "true_added" + "protocol"}``; every report carries the
    fingerprint quality of ``probs`` against the true structures' bits. ``with_ranks``: each report also holds
    the per-query ``ranks`` (a list, in query order).
    """
    quality = fingerprint_quality(probs, structures.bits[true_rows]) if len(probs) else None
    out = {}
    for protocol in protocols:
        ranks, sizes, added = query_ranks(probs, true_rows, query_masses, structures, protocol)
        report = RetrievalReport.from_ranks(ranks.tolist(), sizes.tolist(), quality).to_dict()
        out[protocol.name] = {**report, "true_added": added, "protocol": protocol.describe()}
        if with_ranks:
            out[protocol.name]["ranks"] = ranks.tolist()
    return out


def bootstrap_top_k(
    ranks: np.ndarray,
    groups: np.ndarray,
    ks: tuple[int, ...] = (1, 5, 10, 20),
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Spread of the top-k rates over resamples of the query groups (test structures: a structure's spectra are
    drawn together, as they are not independent): ``top<k>_rate_sd`` and the 2.5/97.5 percentiles
    ``top<k>_rate_lo`` / ``top<k>_rate_hi`` of each k."""
    ranks, groups = np.asarray(ranks), np.asarray(groups)
    keys, inverse = np.unique(groups, return_inverse=True)
    size = np.bincount(inverse, minlength=len(keys)).astype(np.float64)
    draws = np.random.default_rng(seed).integers(0, len(keys), size=(n_boot, len(keys)))
    weight = np.stack([np.bincount(d, minlength=len(keys)) for d in draws]).astype(np.float64)  # (n_boot, groups)
    out: dict[str, float] = {}
    for k in ks:
        hits = np.bincount(inverse, weights=(ranks <= k).astype(np.float64), minlength=len(keys))
        rates = (weight @ hits) / (weight @ size)
        out[f"top{k}_rate_sd"] = float(rates.std(ddof=1))
        out[f"top{k}_rate_lo"], out[f"top{k}_rate_hi"] = (float(v) for v in np.percentile(rates, [2.5, 97.5]))
    return out


def candidate_counts(
    true_rows: np.ndarray, query_masses: np.ndarray, structures: Structures, protocol: Protocol
) -> list[int]:
    """The number of candidates of each query under ``protocol`` (for the random-ranking baseline)."""
    return [
        len(candidate_rows(structures.masses, m, int(t), protocol)[0])
        for t, m in zip(true_rows, query_masses, strict=True)
    ]


def flat_metrics(reports: dict[str, dict[str, Any]]) -> dict[str, float]:
    """``{"<protocol>_<key>": value}`` of the rates, ranks and candidate counts, plus the fingerprint quality once
    (numbers only: the trainer's per-epoch metrics and the sweep tables)."""
    keys = ("top1_rate", "top5_rate", "top10_rate", "top20_rate", "mean_rank", "median_rank", "n_candidates_mean")
    out = {f"{name}_{k}": float(r[k]) for name, r in reports.items() for k in keys if r.get(k) is not None}
    first = next(iter(reports.values()), {})
    for k in ("mean_bit_auc", "mean_tanimoto"):
        if first.get(k) is not None:
            out[k] = float(first[k])
    return out
