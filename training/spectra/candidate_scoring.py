"""Ranking candidates with the VAE's generative side instead of the cross-entropy alone (beyond the paper).

The paper (and the service) rank a query's candidate structures by the cross-entropy between their fingerprint
bits and the fingerprint decoded from q(z | spectrum). A multimodal VAE also scores a (spectrum, candidate) pair
directly; issue 12 asks whether that ranks better. Scores, lower is better (as the cross-entropy):

- ``ce``: the cross-entropy above (:func:`models.retrieval.candidate_scores`).
- ``bound``: minus the model's evidence lower bound of the pair, log p(x | z) + log p(c | z) - KL(q(z | x, c) || p(z))
  at z = the mean of q(z | x, c), likelihood weights 1. For a fixed spectrum x, log p(x, c) = log p(c | x) + const,
  so ranking by the joint bound ranks by an estimate of log p(c | x).
- ``conditional``: minus (that bound - the bound of the candidate alone, log p(c | z) - KL(q(z | c) || p(z))): an
  estimate of log p(x | c). The joint bound also ranks by log p(c), how typical the candidate's fingerprint is,
  which favours common structures over the one that explains the spectrum; candidates are equally likely a priori.
- ``forward``: minus log p(x | z) at z = the mean of q(z | c): how well the spectrum the model generates from the
  candidate alone explains the query (a learned forward model, as CFM-ID ranks by predicted spectra).
- ``forward-cosine``: 1 - the cosine similarity of that generated spectrum and the query (the spectral-library
  similarity, which ignores the overall intensity scale the Gaussian likelihood counts).

Mixtures ``ce + w * <score>`` take their weight from the validation queries. The bound and forward scores need no
retraining: they read a trained model directory (``--model``) and the study's data and split.

    python -m training.spectra.candidate_scoring --model models/default --out reports/spectra-candidate-scoring.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.base import MultimodalVAE
from models.featurize.fingerprints import pack_bits
from models.gaussian import kl_to_standard
from models.retrieval import RetrievalReport, candidate_scores, rank_of_true
from models.spectra_model import SpectraModel
from training.spectra.data import SpectraData
from training.spectra.evaluate import Protocol, bootstrap_top_k, candidate_rows
from training.spectra.experiment import load_data, sample_rows
from training.spectra.study import BINNING, BIT_RATES, FINGERPRINT, MAX_VALID

SCORES = ("ce", "bound", "conditional", "forward", "forward-cosine")
MIX_WEIGHTS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
PROTOCOL = Protocol("nearest", n=256)
ScoreFn = Callable[[int, np.ndarray], dict[str, np.ndarray]]


@torch.no_grad()
def joint_bound(model: MultimodalVAE, spectra: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """log p(x | z) + log p(c | z) - KL(q(z | x, c) || N(0, I)) at z = the posterior mean, per row of
    (spectra, bits) (likelihood weights 1: the bound itself, not the weighted training objective)."""
    q = model.posterior({"spectrum": spectra, "fingerprint": bits})
    log_p = sum(
        model.likelihoods[m].log_prob(model.decoders[m](q.mean), x)
        for m, x in (("spectrum", spectra), ("fingerprint", bits))
    )
    return log_p - kl_to_standard(q)


@torch.no_grad()
def fingerprint_bound(model: MultimodalVAE, bits: torch.Tensor) -> torch.Tensor:
    """log p(c | z) - KL(q(z | c) || N(0, I)) at z = the mean of q(z | c), per row of ``bits``."""
    q = model.posterior({"fingerprint": bits})
    return model.likelihoods["fingerprint"].log_prob(model.decoders["fingerprint"](q.mean), bits) - kl_to_standard(q)


@torch.no_grad()
def generated_spectra(model: MultimodalVAE, bits: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """The spectrum decoder's mean at the mean of q(z | fingerprint) for each row of ``bits``."""
    out = [
        model.decoders["spectrum"](model.posterior({"fingerprint": bits[i : i + batch]}).mean)
        for i in range(0, len(bits), batch)
    ]
    return torch.cat(out)


def make_scorer(model: SpectraModel, data: SpectraData) -> ScoreFn:
    """``score(query_row, candidate_rows) -> {name: scores}`` for one query (its feature row) and its candidate
    structure rows, every score of :data:`SCORES` (lower is better)."""
    vae = model.model
    if not isinstance(vae, MultimodalVAE):
        raise ValueError("bound and forward scores need a multimodal VAE, not the MLP baseline")
    bits = torch.from_numpy(data.structures.bits.astype(np.float32))
    packed = pack_bits(data.structures.bits)
    generated = generated_spectra(vae, bits)  # (structures, bins): depends on the candidate only, computed once
    alone = fingerprint_bound(vae, bits).double().numpy()
    likelihood = vae.likelihoods["spectrum"]
    unit = torch.nn.functional.normalize(generated, dim=1)

    def score(row: int, rows: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.from_numpy(data.features[[row]].toarray())
        probs = model.predict_features(x.numpy())[0]
        xs = x.expand(len(rows), -1)
        bound = -joint_bound(vae, xs, bits[rows]).double().numpy()
        return {
            "ce": np.asarray(candidate_scores(probs, packed[rows]), dtype=np.float64),
            "bound": bound,
            "conditional": bound + alone[rows],
            "forward": -likelihood.log_prob(generated[rows], xs).double().numpy(),
            "forward-cosine": 1.0 - (unit[rows] @ torch.nn.functional.normalize(x, dim=1)[0]).double().numpy(),
        }

    return score


def all_scores(score: ScoreFn, data: SpectraData, rows: np.ndarray) -> list[tuple[dict[str, np.ndarray], int]]:
    """For each query row: (its candidates' scores, the index of the true structure among them)."""
    out = []
    for row in rows:
        true_row = int(data.structure[row])
        cands, _ = candidate_rows(data.structures.masses, float(data.query_mass[row]), true_row, PROTOCOL)
        out.append((score(int(row), cands), int(np.flatnonzero(cands == true_row)[0])))
    return out


def ranks_of(scored: list[tuple[dict[str, np.ndarray], int]], name: str, mix: float | None = None) -> np.ndarray:
    """Rank of the true structure per query by score ``name``, or by ``ce + mix * name`` when ``mix`` is given."""
    return np.asarray([rank_of_true(s[name] if mix is None else s["ce"] + mix * s[name], true) for s, true in scored])


def evaluate(model_dir: Path, data_dir: str, seed: int, max_test: int | None, command: str) -> dict[str, Any]:
    """Every score and every mixture ``ce + w * score`` (w chosen on validation top-1) on the test queries."""
    model = SpectraModel.load(model_dir, device="cpu")
    data = load_data(data_dir, BINNING, FINGERPRINT, BIT_RATES)
    if data.fingerprint_spec.text != model.fingerprint_spec.text:
        raise ValueError(f"the model predicts {model.fingerprint_spec}, the study data has {data.fingerprint_spec}")
    t0 = time.perf_counter()
    score = make_scorer(model, data)
    valid = all_scores(score, data, sample_rows(data.split.val, MAX_VALID, seed))
    test_rows = sample_rows(data.split.test, max_test, seed)
    test = all_scores(score, data, test_rows)
    groups = data.structure[test_rows]
    rows = []

    def row(label: str, name: str, weight: float | None, valid_top1: float) -> None:
        ranks = ranks_of(test, name, weight)
        report = RetrievalReport.from_ranks(ranks.tolist(), [len(s["ce"]) for s, _ in test]).to_dict()
        spread = bootstrap_top_k(ranks, groups, seed=seed)
        rows.append({"score": label, "weight": weight, "valid_top1_rate": valid_top1, **report,
                     "top1_rate_sd_boot": spread["top1_rate_sd"]})  # fmt: skip
        print(f"{label:>24}: test top-1 {report['top1_rate']:.4f} (boot sd {spread['top1_rate_sd']:.4f}) "
              f"top-10 {report['top10_rate']:.4f}", flush=True)  # fmt: skip

    for name in SCORES:
        row(name, name, None, float(np.mean(ranks_of(valid, name) == 1)))
    for name in SCORES[1:]:
        by_weight = {w: float(np.mean(ranks_of(valid, name, w) == 1)) for w in MIX_WEIGHTS}
        best = max(by_weight, key=lambda w: (by_weight[w], -w))
        row(f"ce + {best:g} x {name}", name, best, by_weight[best])
    return {
        "command": command,
        "model": str(model_dir),
        "model_card_test_top1": model.card.get("test_metrics", {}).get("nearest256", {}).get("top1_rate"),
        "protocol": PROTOCOL.describe(),
        "n_valid": len(valid),
        "n_test": len(test),
        "mix_weights_tried": list(MIX_WEIGHTS),
        "seconds": round(time.perf_counter() - t0, 1),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="rank candidates by the VAE's joint bound / forward model")
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--seed", type=int, default=0, help="validation sample and bootstrap seed")
    parser.add_argument("--max-test", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python -m training.spectra.candidate_scoring " + shlex.join(sys.argv[1:] if argv is None else argv)
    result = evaluate(args.model, args.data, args.seed, args.max_test, command)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
