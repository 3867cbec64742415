"""How a VAE spectra model should turn a spectrum into fingerprint probabilities: decode the posterior mean (what
``SpectraModel`` does) or average the decoded bits over samples of q(z | spectrum) (the posterior predictive).

    python3 benchmarks/spectra_decoding.py [--model models/default] [--data ../shared/data] [--samples 8 32]

Scores every test-split spectrum of the model's own MassBank split against the 256 pool structures nearest in
mass, as ``reports/spectra.md`` does. Writes benchmarks/results/spectra_decoding.json.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch
from _machine import add_data_argument, save

from models.spectra_model import DEFAULT_MODEL_DIR, SpectraModel
from training.spectra.data import load_spectra_data
from training.spectra.evaluate import DEFAULT_PROTOCOLS, flat_metrics, pool_retrieval

KEYS = ("nearest256_top1_rate", "nearest256_top10_rate", "nearest256_top20_rate", "mean_bit_auc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    add_data_argument(parser)
    parser.add_argument("--samples", type=int, nargs="+", default=[8, 32], help="posterior samples to average")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = SpectraModel.load(args.model, device="cpu")
    data = load_spectra_data(args.data, binning=model.binning, fingerprint_spec=model.fingerprint_spec.text)
    rows = data.split.test
    block = data.features[rows]
    x = torch.as_tensor(np.asarray(block.toarray() if hasattr(block, "toarray") else block, dtype=np.float32))

    def score(probs: torch.Tensor) -> dict[str, float]:
        reports = pool_retrieval(
            probs.numpy(), data.structure[rows], data.query_mass[rows], data.structures, DEFAULT_PROTOCOLS
        )
        return {k: round(v, 4) for k, v in flat_metrics(reports).items() if k in KEYS}

    vae = model.model.eval()
    results: dict[str, Any] = {}
    with torch.no_grad():
        q = vae.posterior({"spectrum": x})
        results["posterior_mean"] = score(vae.decode(q.mean)["fingerprint"])
        print("posterior mean:", results["posterior_mean"], flush=True)
        for n in args.samples:
            torch.manual_seed(0)
            probs = sum(vae.decode(q.rsample())["fingerprint"] for _ in range(n)) / n
            results[f"posterior_predictive_{n}"] = score(probs)
            print(f"average over {n} posterior samples:", results[f"posterior_predictive_{n}"], flush=True)
    save("spectra_decoding", {"model": args.model, "n_queries": len(rows), "candidates": 256, **results})


if __name__ == "__main__":
    main()
