"""Ranking throughput: cross-entropy scores of 1,000 / 10,000 / 100,000 candidates against one prediction, held
against the bound of reading the candidates' packed bits once.

    python3 benchmarks/ranking.py [--device cuda] [--density 0.034] [--repeats 7]

Candidates are random bits of the default fingerprint spec's length (2,215) with the density of real fingerprints
(MassBank molecules under morgan2-2048+maccs: 3.4% of bits set, 75 per molecule). On CPU the main figure is
``onbits_s``, the layout the candidate store holds (positions of the set bits, ``OnBits``), held against reading
the packed bits once (``bound_read_packed_s``, the issue's bound) and reading the ``OnBits`` arrays once. Timings
are medians of repeated runs (the machine may be shared). Writes benchmarks/results/ranking[-cuda].json.
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse
import torch
from _machine import median_of, save

from models.featurize.fingerprints import DEFAULT_FINGERPRINT_SPEC, pack_bits, parse_fingerprint_spec
from models.featurize.onbits import OnBits
from models.retrieval import candidate_scores, rank_candidates


def _timed_cpu(pred: np.ndarray, bits: np.ndarray, packed: np.ndarray) -> dict:
    """The scoring variants on CPU, as zero-argument callables."""
    sparse = scipy.sparse.csr_matrix(bits)
    onbits = OnBits.from_dense(bits)
    pred_t, packed_t = torch.from_numpy(pred), torch.from_numpy(packed)
    return {
        "bound_read_onbits_s": lambda: (onbits.indices.copy(), onbits.indptr.copy()),
        "onbits_s": lambda: candidate_scores(pred, onbits),
        "rank_top10_onbits_s": lambda: rank_candidates(pred, onbits, 10),
        "numpy_packed_s": lambda: candidate_scores(pred, packed),
        "numpy_unpacked_s": lambda: candidate_scores(pred, bits),
        "scipy_sparse_s": lambda: candidate_scores(pred, sparse),
        "torch_cpu_packed_s": lambda: candidate_scores(pred_t, packed_t, backend="torch"),
    }


def _timed_gpu(pred: np.ndarray, bits: np.ndarray, packed: np.ndarray, device: torch.device) -> dict:
    """The torch path on a GPU (synchronised, so the time is the work's), and the GPU's own read bound."""
    gpu_pred, gpu_bits, gpu_packed = (torch.from_numpy(a).to(device) for a in (pred, bits, packed))

    def synced(fn):
        def run():
            fn()
            torch.cuda.synchronize(device)

        return run

    return {
        "bound_read_packed_s": synced(lambda: gpu_packed.clone()),
        "torch_packed_s": synced(lambda: candidate_scores(gpu_pred, gpu_packed)),
        "torch_unpacked_s": synced(lambda: candidate_scores(gpu_pred, gpu_bits)),
        "rank_top10_packed_s": lambda: rank_candidates(gpu_pred, gpu_packed, 10),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, or cuda to time the torch path on a GPU")
    parser.add_argument("--density", type=float, default=0.034)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per figure (the median is kept)")
    parser.add_argument("--result-suffix", default="", help="added to the result file's name (repeated runs)")
    args = parser.parse_args()
    n_bits = parse_fingerprint_spec(DEFAULT_FINGERPRINT_SPEC).n_bits
    rng = np.random.default_rng(0)
    pred = rng.random(n_bits)
    main_key = "onbits_s" if args.device == "cpu" else "torch_packed_s"
    rows = []
    for n in args.sizes:
        repeats = args.repeats
        bits = (rng.random((n, n_bits)) < args.density).astype(np.uint8)
        packed = pack_bits(bits)
        row = {"candidates": n, "packed_mb": packed.nbytes / 1e6, "onbits_mb": OnBits.from_dense(bits).nbytes / 1e6}
        # the bounds: one pass over the packed bits (a copy), and unpacking them (np.unpackbits)
        row["bound_read_packed_s"] = median_of(packed.copy, repeats)
        row["bound_unpackbits_s"] = median_of(lambda packed=packed: np.unpackbits(packed, axis=1), repeats)
        if args.device == "cpu":
            timed = _timed_cpu(pred, bits, packed)
        else:
            timed = _timed_gpu(pred, bits, packed, torch.device(args.device))
        for name, fn in timed.items():
            row[name] = median_of(fn, 2 if name == "torch_cpu_packed_s" else repeats)
        row["candidates_per_second"] = n / row[main_key]
        row["ratio_to_read_bound"] = row[main_key] / row["bound_read_packed_s"]
        row["ratio_to_unpackbits"] = row[main_key] / row["bound_unpackbits_s"]
        if "bound_read_onbits_s" in row:
            row["ratio_to_read_onbits"] = row[main_key] / row["bound_read_onbits_s"]
        rows.append(row)
        others = ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in row.items() if k.endswith("_s") and k != main_key)
        print(
            f"{n:>7} candidates: scores {row[main_key] * 1e3:8.2f} ms ({row['candidates_per_second']:,.0f}/s), "
            f"x{row['ratio_to_read_bound']:.0f} the read bound, x{row['ratio_to_unpackbits']:.1f} np.unpackbits; "
            f"{others}"
        )
    suffix = "" if args.device == "cpu" else f"-{args.device.split(':')[0]}"
    save(
        f"ranking{suffix}{args.result_suffix}",
        {
            "fingerprint_spec": DEFAULT_FINGERPRINT_SPEC,
            "n_bits": n_bits,
            "density": args.density,
            "device": args.device,
            "timing": f"seconds, median of {args.repeats} runs after a warm-up",
            "main": main_key,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
