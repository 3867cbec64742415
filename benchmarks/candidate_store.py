"""The in-memory candidate store on a lab-sized database: load time, memory, and the lookup + ranking time per
spectrum by precursor mass window, by formula, and over the whole database (no filter).

    python3 benchmarks/candidate_store.py --database-url sqlite:////tmp/msvae-big.sqlite [--spectra 200]

Loads the store as the service does at start (``CandidateStore.load``), then for real MassBank [M+H]+ spectra
ranks, with the shipped model's predicted fingerprints: the candidates within 10 ppm of the neutral mass; the
candidates of the spectrum's molecular formula; every candidate. Timings per spectrum, medians (the machine may
be shared). Writes benchmarks/results/candidate_store-<sqlite|postgresql>[<--result-suffix>].json.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _machine import add_data_argument, save

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.annotation import spectrum_neutral_mass  # noqa: E402
from app.candidates.store import CandidateStore  # noqa: E402
from app.db import Database  # noqa: E402
from models.featurize.fingerprints import molecule_from_smiles  # noqa: E402
from models.featurize.mgf import Spectrum, read_spectra  # noqa: E402
from models.retrieval import rank_candidates  # noqa: E402
from models.spectra_model import DEFAULT_MODEL_DIR, SpectraModel  # noqa: E402


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _per_spectrum(fn, items: list) -> tuple[float, list]:
    """Median milliseconds of ``fn(item)`` over ``items`` and what it returned."""
    times, outs = [], []
    for item in items:
        start = time.perf_counter()
        outs.append(fn(item))
        times.append(time.perf_counter() - start)
    return round(1e3 * statistics.median(times), 3), outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    add_data_argument(parser)
    parser.add_argument("--spectra", type=int, default=200)
    parser.add_argument("--full-scans", type=int, default=5)
    parser.add_argument("--loads", type=int, default=3, help="times the store is loaded (the median is reported)")
    parser.add_argument("--result-suffix", default="", help="added to the result file's name")
    args = parser.parse_args()
    load_before = os.getloadavg()
    model = SpectraModel.load(DEFAULT_MODEL_DIR)
    rss_model = _rss_mb()
    database = Database(args.database_url)
    loads = []
    store = None
    for _ in range(args.loads):
        store = None  # the previous load's memory is freed first
        start = time.perf_counter()
        with database.session() as session:
            store = CandidateStore.load(session, model.fingerprint_spec)
        loads.append(round(time.perf_counter() - start, 2))
    load_s = statistics.median(loads)
    rss_loaded = _rss_mb()
    matrix = store.matrix
    print(f"{len(store):,} candidates loaded in {load_s:.1f} s; RSS {rss_model:.0f} -> {rss_loaded:.0f} MB", flush=True)

    spectra = []
    for item in read_spectra(args.data / "massbank" / "massbank-pos-ms2.mgf.gz"):
        if isinstance(item, Spectrum) and item.smiles and item.adduct in (None, "[M+H]+"):
            spectra.append(item)
            if len(spectra) == args.spectra:
                break
    probs = model.predict_fingerprints(spectra)
    formulas = [molecule_from_smiles(s.smiles, None).formula for s in spectra]
    masses = [spectrum_neutral_mass(s) for s in spectra]
    cases = list(zip(probs, masses, formulas, strict=True))

    def by_mass(case) -> int:
        p, mass, _ = case
        rows = matrix.mass_slice(mass, 10.0)
        rank_candidates(p, matrix.bits_at(rows), 10)
        return rows.stop - rows.start

    def by_formula(case) -> int:
        p, _, formula = case
        rows = matrix.by_formula(formula)
        rank_candidates(p, matrix.bits_at(rows), 10)
        return len(rows)

    def whole(case) -> int:
        rank_candidates(case[0], matrix.bits, 10)
        return len(matrix)

    by_mass(cases[0]), by_formula(cases[0])  # warm-up (the formula grouping is made on first use)
    start = time.perf_counter()
    whole(cases[0])  # the whole store as set positions, made on first use
    first_whole_s = time.perf_counter() - start
    mass_ms, mass_n = _per_spectrum(by_mass, cases)
    formula_ms, formula_n = _per_spectrum(by_formula, cases)
    whole_ms, _ = _per_spectrum(whole, cases[: args.full_scans])
    figures = {
        "database": "sqlite" if args.database_url.startswith("sqlite") else "postgresql",
        "candidates": len(store),
        "load_s": round(load_s, 2),
        "load_s_runs": loads,
        "rss_mb_model_only": round(rss_model, 1),
        "rss_mb_with_store": round(rss_loaded, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "store_bits_mb": round(matrix.bits.nbytes / 1e6, 1),
        "store_smiles_inchikeys_mb": round((matrix.smiles.nbytes + matrix.inchikeys.nbytes) / 1e6, 1),
        "spectra": len(cases),
        "mass_window_10ppm": {
            "median_ms": mass_ms,
            "candidates_mean": float(np.mean(mass_n)),
            "candidates_max": int(np.max(mass_n)),
        },  # fmt: skip
        "formula": {
            "median_ms": formula_ms,
            "candidates_mean": float(np.mean(formula_n)),
            "candidates_max": int(np.max(formula_n)),
        },  # fmt: skip
        "whole_database": {
            "median_ms": whole_ms,
            "scans": args.full_scans,
            "first_scan_s_with_conversion": round(first_whole_s, 2),
        },  # fmt: skip
        "rss_mb_after_whole_scan": round(_rss_mb(), 1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "note": "2 CPU cores shared with other engineers' jobs (see the load averages); timings are medians; "
        "rss_mb_with_store is after the last of the loads (memory freed by earlier ones may still be counted): "
        "benchmarks/service_start.py measures the server's own",
    }
    print(figures, flush=True)
    save(f"candidate_store-{figures['database']}{args.result_suffix}", figures)
    database.dispose()


if __name__ == "__main__":
    main()
