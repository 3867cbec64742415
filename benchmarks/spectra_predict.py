"""Annotation throughput of the shipped default model: spectra featurized, fingerprints predicted, and spectra
annotated end to end (prediction plus ranking 256 candidates each) per second.

    python3 benchmarks/spectra_predict.py [--n 1000] [--device cpu] [--threads 1] [--request-spectra 10]

Spectra: the first N records of the MassBank file (real peak lists); candidates: 256 random real MassBank
fingerprints per spectrum. Prediction is timed in one batch and in batches of ``--request-spectra`` (one upload's
spectra, what the service predicts at a time). Writes benchmarks/results/spectra_predict[-cuda]<--result-suffix>.json.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch
from _machine import add_data_argument, best_of, save

from app.annotation import CandidateSet, annotate
from models.featurize import fingerprint_bits, pack_bits, read_spectra
from models.spectra_model import DEFAULT_MODEL_DIR, SpectraModel, featurize_each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="spectra")
    parser.add_argument("--candidates", type=int, default=256, help="candidates per spectrum")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    add_data_argument(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--request-spectra", type=int, default=10, help="spectra per request")
    parser.add_argument("--result-suffix", default="", help="added to the result file's name")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    path = args.data / "massbank" / "massbank-pos-ms2.mgf.gz"
    spectra = [s for s in itertools.islice(read_spectra(path), args.n) if not isinstance(s, Exception)]
    model = SpectraModel.load(DEFAULT_MODEL_DIR, device=args.device)
    smiles = sorted({s.smiles for s in spectra if s.smiles})
    packed = pack_bits(fingerprint_bits(smiles, model.fingerprint_spec))
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(packed), args.candidates)
    pool = CandidateSet([smiles[i] for i in rows], [""] * len(rows), [""] * len(rows), packed[rows], [None] * len(rows))

    n = len(spectra)
    features, _, _ = featurize_each(spectra, model.binning)
    featurize_s = best_of(lambda: featurize_each(spectra, model.binning), args.repeats)
    predict_s = best_of(lambda: model.predict_features(features), args.repeats)
    k = args.request_spectra
    in_requests_s = best_of(lambda: [model.predict_features(features[i : i + k]) for i in range(0, n, k)], args.repeats)
    annotate_s = best_of(lambda: annotate(model, spectra, lambda _: pool, 10), args.repeats)
    save(
        "spectra_predict" + ("-cuda" if str(model.device).startswith("cuda") else "") + args.result_suffix,
        {
            "model": model.name,
            "parameters": model.num_parameters(),
            "device": str(model.device),
            "spectra": n,
            "candidates_per_spectrum": args.candidates,
            "featurize_spectra_per_s": round(n / featurize_s, 1),
            "predict_spectra_per_s": round(n / predict_s, 1),
            "request_spectra": k,
            "predict_spectra_per_s_in_requests": round(n / in_requests_s, 1),
            "annotate_spectra_per_s": round(n / annotate_s, 1),
            "note": "best of repeats; annotate = featurize + predict + rank each spectrum's candidates + build "
            "the result items",
        },
    )


if __name__ == "__main__":
    main()
