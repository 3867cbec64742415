"""Candidate scores from the VAE's generative side (training/spectra/candidate_scoring.py): the joint bound against
its closed form, the conditional score's identity, and the scorer on real MassBank records."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.featurize.binning import BinningSpec
from models.gaussian import product_of_experts
from models.registry import build_model
from models.retrieval import candidate_scores
from models.spectra_model import SpectraModel
from training.spectra.candidate_scoring import (
    SCORES,
    all_scores,
    fingerprint_bound,
    generated_spectra,
    joint_bound,
    make_scorer,
    ranks_of,
)
from training.spectra.data import load_spectra_data

SMALL = {"spectrum_hidden": (8,), "fingerprint_hidden": (8,)}


@pytest.fixture(scope="module")
def tiny_svae():
    torch.manual_seed(0)
    return build_model("svae", "spectra", latent_dim=3, n_bins=6, n_bits=4, **SMALL).eval()


def test_joint_bound_is_the_elbo_at_the_posterior_mean(tiny_svae):
    torch.manual_seed(1)
    x, c = torch.rand(5, 6), torch.randint(0, 2, (5, 4)).float()
    # q(z | x, c) by hand: the product of the two own experts and N(0, I)
    s = tiny_svae.experts["spectrum__from__spectrum"](x)
    f = tiny_svae.experts["fingerprint__from__fingerprint"](c)
    precision = torch.exp(-s.logvar) + torch.exp(-f.logvar) + 1.0
    mean = (s.mean * torch.exp(-s.logvar) + f.mean * torch.exp(-f.logvar)) / precision
    var = 1.0 / precision
    mu_x = tiny_svae.decoders["spectrum"](mean)
    logits = tiny_svae.decoders["fingerprint"](mean)
    log_px = (-0.5 * (x - mu_x) ** 2 - 0.5 * math.log(2 * math.pi)).sum(1)
    log_pc = (c * torch.nn.functional.logsigmoid(logits) + (1 - c) * torch.nn.functional.logsigmoid(-logits)).sum(1)
    kl = 0.5 * (var + mean**2 - 1.0 - torch.log(var)).sum(1)
    with torch.no_grad():
        expected = log_px + log_pc - kl
    torch.testing.assert_close(joint_bound(tiny_svae, x, c), expected, rtol=1e-5, atol=1e-5)


def test_fingerprint_bound_and_generated_spectra_use_q_of_the_fingerprint_alone(tiny_svae):
    c = torch.tensor([[1.0, 0, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0]])
    experts = [tiny_svae.experts[k](c) for k in ("fingerprint__from__fingerprint", "spectrum__from__fingerprint")]
    q = product_of_experts(experts, prior_expert=True)
    with torch.no_grad():
        torch.testing.assert_close(generated_spectra(tiny_svae, c, batch=2), tiny_svae.decoders["spectrum"](q.mean))
        logits = tiny_svae.decoders["fingerprint"](q.mean)
        log_pc = -torch.nn.functional.binary_cross_entropy_with_logits(logits, c, reduction="none").sum(1)
        kl = 0.5 * (q.var + q.mean**2 - 1.0 - q.logvar).sum(1)
    torch.testing.assert_close(fingerprint_bound(tiny_svae, c), log_pc - kl)


@pytest.fixture(scope="module")
def data(shared_data):
    binning = BinningSpec(bin_width=1.0, intensity="log1p-relative")
    return load_spectra_data(shared_data, binning=binning, fingerprint_spec="maccs", limit=400)


def test_scorer_on_massbank_records(data):
    torch.manual_seed(0)
    model = SpectraModel.create("svae", binning=data.binning, fingerprint_spec=data.fingerprint_spec, latent_dim=4,
                                spectrum_hidden=(16,), fingerprint_hidden=(16,))  # fmt: skip
    score = make_scorer(model, data)
    rows = data.split.train[:5]
    scored = all_scores(score, data, rows)
    assert len(scored) == len(rows)
    for scores, true in scored:
        n = len(scores["ce"])
        assert set(scores) == set(SCORES) and all(len(v) == n and np.isfinite(v).all() for v in scores.values())
        assert 0 <= true < n
    # ce is the service's ranking; the forward score of the true structure is -log p(x | its generated spectrum)
    (scores, true), row = scored[0], int(rows[0])
    x = torch.from_numpy(data.features[[row]].toarray())
    probs = model.predict_features(x.numpy())[0]
    true_row = int(data.structure[row])
    assert scores["ce"][true] == pytest.approx(float(candidate_scores(probs, data.structures.bits[[true_row]])[0]))
    bits = torch.from_numpy(data.structures.bits[[true_row]].astype(np.float32))
    expected = -model.model.likelihoods["spectrum"].log_prob(generated_spectra(model.model, bits), x)
    assert scores["forward"][true] == pytest.approx(float(expected[0]), rel=1e-5)
    # a mixture with weight 0 is the cross-entropy's ranking
    np.testing.assert_array_equal(ranks_of(scored, "forward", 0.0), ranks_of(scored, "ce"))
    assert (ranks_of(scored, "ce") >= 1).all()


def test_scorer_refuses_the_mlp(data):
    model = SpectraModel.create("mlp", binning=data.binning, fingerprint_spec=data.fingerprint_spec)
    with pytest.raises(ValueError, match="multimodal VAE"):
        make_scorer(model, data)
