"""The objectives' values, computed by hand from the networks' raw outputs and held against ``loss()``.

A tiny two-modality model (MLP encoders, Bernoulli decoders, latent 3) with fixed noise: every reparameterised
sample is z = mean + std * EPS for one fixed EPS, so the hand computation needs no random numbers. The hand code
below re-derives everything from the raw network outputs: the softplus variance, the products of experts with the
N(0, I) prior expert (eq. 15-18), the Gaussian KLs, the Bernoulli log-likelihoods, and eq. 19-22 / Algorithm 1
(SVAE) and Wu & Goodman's VAEVAE loss. It shares no code with ``models/`` beyond calling the networks.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import MultimodalBatch, build_model
from models.gaussian import DiagonalGaussian
from models.likelihoods import Bernoulli
from models.spec import ModalitySpec

D, L = 5, 3
EPS = torch.tensor([0.7, -1.2, 0.3], dtype=torch.float64)


def tiny_modality() -> ModalitySpec:
    return ModalitySpec(
        make_body=lambda: nn.Sequential(nn.Linear(D, 4), nn.Tanh()),
        feature_dim=4,
        make_decoder=lambda latent: nn.Linear(latent, D),
        likelihood=Bernoulli(),
        shape=(D,),
    )


@pytest.fixture
def fixed_noise(monkeypatch):
    def rsample(self: DiagonalGaussian, n: int | None = None) -> torch.Tensor:
        assert n is None
        return self.mean + EPS.to(self.mean.dtype) * self.std

    monkeypatch.setattr(DiagonalGaussian, "rsample", rsample)


def batch() -> MultimodalBatch:
    g = torch.Generator().manual_seed(5)

    def bits(n: int) -> torch.Tensor:
        return torch.rand(n, D, generator=g, dtype=torch.float64).round()

    return MultimodalBatch(paired={"a": bits(4), "b": bits(4)}, unpaired={"a": bits(3), "b": bits(2)})


# ----- by hand ------------------------------------------------------------------------------------------------
def expert(encoder: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, variance) of one expert: the heads' outputs, variance = softplus(raw) + 1e-6."""
    h = encoder.body(x)
    return encoder.head.mean(h), torch.log1p(torch.exp(encoder.head.logvar(h))) + 1e-6


def poe_with_prior(*experts: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    precision = 1.0 + sum(1.0 / v for _, v in experts)
    return sum(m / v for m, v in experts) / precision, 1.0 / precision


def kl(q: tuple[torch.Tensor, torch.Tensor], p: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    (mq, vq), (mp, vp) = q, p
    return 0.5 * (torch.log(vp / vq) + (vq + (mq - mp) ** 2) / vp - 1.0).sum(-1)


def kl_prior(q: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return kl(q, (torch.zeros_like(q[0]), torch.ones_like(q[1])))


def neg_log_lik(decoder: nn.Module, q: tuple[torch.Tensor, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) of a Bernoulli decoder at z = mean + sqrt(var) * EPS."""
    z = q[0] + EPS * q[1].sqrt()
    p = torch.sigmoid(decoder(z))
    return -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(-1)


def svae_by_hand(model, b: MultimodalBatch) -> dict[str, float]:
    """eq. 19-22 (Algorithm 1) for SVAE: q(z|x1,x2) = q1 q2 p, q(z|x1) = q1 q2* p, q(z|x2) = q2 q1* p."""
    e, dec = model.experts, model.decoders
    x1, x2, u1, u2 = b.paired["a"], b.paired["b"], b.unpaired["a"], b.unpaired["b"]
    q12 = poe_with_prior(expert(e["a__from__a"], x1), expert(e["b__from__b"], x2))
    q1 = poe_with_prior(expert(e["a__from__a"], x1), expert(e["b__from__a"], x1))
    q2 = poe_with_prior(expert(e["b__from__b"], x2), expert(e["a__from__b"], x2))
    qu1 = poe_with_prior(expert(e["a__from__a"], u1), expert(e["b__from__a"], u1))
    qu2 = poe_with_prior(expert(e["b__from__b"], u2), expert(e["a__from__b"], u2))
    terms = {
        "paired/recon": (neg_log_lik(dec["a"], q12, x1) + neg_log_lik(dec["b"], q12, x2)).mean(),
        "paired/kl": (kl(q12, q1) + kl(q12, q2)).mean(),
        "paired_unimodal/recon": neg_log_lik(dec["a"], q1, x1).mean() + neg_log_lik(dec["b"], q2, x2).mean(),
        "paired_unimodal/kl": kl_prior(q1).mean() + kl_prior(q2).mean(),
        "unpaired_a/recon": neg_log_lik(dec["a"], qu1, u1).mean(),
        "unpaired_a/kl": kl_prior(qu1).mean(),
        "unpaired_b/recon": neg_log_lik(dec["b"], qu2, u2).mean(),
        "unpaired_b/kl": kl_prior(qu2).mean(),
    }
    return {k: float(v.detach()) for k, v in terms.items()}


def vaevae_by_hand(model, b: MultimodalBatch) -> dict[str, float]:
    """Wu & Goodman's VAEVAE loss: joint network q(z|x1,x2), unimodal networks q1(z|x1), q2(z|x2)."""
    dec = model.decoders
    x1, x2, u1, u2 = b.paired["a"], b.paired["b"], b.unpaired["a"], b.unpaired["b"]
    joint = model.joint["a__b"]
    h = joint.fuse(torch.cat([joint.bodies["a"](x1), joint.bodies["b"](x2)], dim=-1))
    q12 = joint.head.mean(h), torch.log1p(torch.exp(joint.head.logvar(h))) + 1e-6
    q1, q2 = expert(model.unimodal["a"], x1), expert(model.unimodal["b"], x2)
    qu1, qu2 = expert(model.unimodal["a"], u1), expert(model.unimodal["b"], u2)
    terms = {
        "paired/recon": (neg_log_lik(dec["a"], q12, x1) + neg_log_lik(dec["b"], q12, x2)).mean(),
        "paired/kl": (kl(q12, q1) + kl(q12, q2)).mean(),
        "unpaired_a/recon": neg_log_lik(dec["a"], qu1, u1).mean(),
        "unpaired_a/kl": kl_prior(qu1).mean(),
        "unpaired_b/recon": neg_log_lik(dec["b"], qu2, u2).mean(),
        "unpaired_b/kl": kl_prior(qu2).mean(),
    }
    return {k: float(v.detach()) for k, v in terms.items()}


# ----- the tests ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "by_hand"), [("svae", svae_by_hand), ("vaevae", vaevae_by_hand)])
def test_objective_equals_the_papers_formula_term_by_term(name, by_hand, fixed_noise):
    torch.manual_seed(3)
    model = build_model(name, modalities={"a": tiny_modality(), "b": tiny_modality()}, latent_dim=L).double()
    b = batch()
    out = model.loss(b)
    expected = by_hand(model, b)
    assert set(out.terms) == set(expected)
    for term, value in expected.items():
        assert float(out.terms[term].detach()) == pytest.approx(value, rel=1e-10, abs=1e-10), term
    assert float(out.total.detach()) == pytest.approx(sum(expected.values()), rel=1e-10)
    # eq. 22's terms are not degenerate: every KL is positive, every reconstruction costs something
    assert all(v > 0 for v in expected.values())


def test_svae_objective_is_vaevae_loss_plus_the_bold_terms_of_algorithm_1(fixed_noise):
    """Same networks, two objectives: SVAE (eq. 19-22) minus SVAE* (VAEVAE's loss) = the unimodal ELBOs on the
    paired samples, and nothing else."""
    torch.manual_seed(3)
    svae = build_model("svae", modalities={"a": tiny_modality(), "b": tiny_modality()}, latent_dim=L).double()
    svae_star = build_model("svae-star", modalities={"a": tiny_modality(), "b": tiny_modality()}, latent_dim=L)
    svae_star = svae_star.double()
    svae_star.load_state_dict(svae.state_dict())
    b = batch()
    full, reduced = svae.loss(b), svae_star.loss(b)
    bold = full.terms["paired_unimodal/recon"] + full.terms["paired_unimodal/kl"]
    assert float((full.total - reduced.total).detach()) == pytest.approx(float(bold.detach()), rel=1e-10)
    assert set(full.terms) - set(reduced.terms) == {"paired_unimodal/recon", "paired_unimodal/kl"}


def test_softplus_variance_has_a_gradient_everywhere():
    """The old head clamped log-variances to [-18, 18], with zero gradient beyond: an expert pushed past the clamp
    (the zero-KL state with the prior expert lies at variance -> infinity) could never come back."""
    raw = torch.tensor([-40.0, 0.0, 18.0, 40.0, 1e4], requires_grad=True)
    g = DiagonalGaussian.from_params(torch.zeros(5), raw)
    torch.testing.assert_close(g.var, torch.nn.functional.softplus(raw.detach()) + 1e-6)
    g.logvar.sum().backward()
    assert (raw.grad > 0).all()
    old = torch.tensor([17.0, 40.0], requires_grad=True)
    DiagonalGaussian.from_params(torch.zeros(2), old, "exp").logvar.sum().backward()
    assert old.grad.tolist() == [1.0, 0.0]  # the dead gradient past the clamp
    with pytest.raises(ValueError, match="expert variance"):
        DiagonalGaussian.from_params(torch.zeros(1), torch.zeros(1), "tanh")


def test_prior_expert_is_on_by_default_in_every_product():
    svae = build_model("svae", experiment="mnist-split")
    assert svae.prior_expert and svae.expert_variance == "softplus"
    torch.manual_seed(0)
    model = build_model("svae", modalities={"a": tiny_modality(), "b": tiny_modality()}, latent_dim=L)
    x = torch.rand(2, D)
    q = model.posterior({"a": x})
    m1, v1 = expert(model.experts["a__from__a"], x)
    m2, v2 = expert(model.experts["b__from__a"], x)
    mean, var = poe_with_prior((m1, v1), (m2, v2))
    torch.testing.assert_close(q.mean, mean)
    torch.testing.assert_close(q.var, var)
    assert (q.var < 1).all()  # the N(0, I) factor alone bounds a product's variance by 1


@pytest.mark.parametrize(("name", "count"), [("svae", 4_880_394), ("vaevae", 4_814_218)])
def test_paper_code_nets_have_the_codes_parameter_counts(name, count):
    """ANCHORS.md: the poe-vaes code's SVAE has 4,880,394 parameters, its VAEVAE 4,814,218."""
    assert build_model(name, experiment="mnist-split", paper_code_nets=True).num_parameters() == count


def three_modal_terms(name: str, subset_terms: str):
    torch.manual_seed(0)
    modalities = {m: tiny_modality() for m in ("a", "b", "c")}
    model = build_model(name, modalities=modalities, latent_dim=L, subset_terms=subset_terms).double()
    x = {m: torch.rand(4, D, dtype=torch.float64).round() for m in modalities}
    return model, x


@pytest.mark.parametrize("name", ["svae", "vaevae"])
def test_three_modal_code_variant_reconstructs_all_modalities_from_a_pair(name, fixed_noise):
    """subset_terms="code": a pair posterior decodes all three modalities and is pulled towards its two members
    only; "text" (eq. 30 as printed) decodes the pair and is pulled towards all three single modalities."""
    calls = {}
    for variant in ("text", "code"):
        model, x = three_modal_terms(name, variant)
        rows: dict[str, int] = {}
        for m, decoder in model.decoders.items():
            decoder.register_forward_hook(lambda _mod, inp, _out, m=m, rows=rows: rows.__setitem__(m, inp[0].shape[0]))
        model.loss(MultimodalBatch(paired=x))
        calls[variant] = rows
    rules = 2 if name == "svae" else 1  # SVAE has two PoE rules per pair (eq. 35-36)
    # rows decoded per modality: full set (4) + pairs containing it (text) or all pairs (code) + unimodal (SVAE)
    unimodal = 4 if name == "svae" else 0
    assert calls["text"]["a"] == 4 + 2 * rules * 4 + unimodal
    assert calls["code"]["a"] == 4 + 3 * rules * 4 + unimodal


def test_three_modal_svae_code_variant_uses_the_reversed_kl(fixed_noise):
    """The code's SVAE-3 pulls with KL(q(z|x_i) || q^s(z|x_i,x_j)) for the members i of the pair, plus the prior KL."""
    model, x = three_modal_terms("svae", "code")
    enc = model.encode_batch(MultimodalBatch(paired=x))
    reversed_kl, forward_kl = 0.0, 0.0
    for pair in (("a", "b"), ("a", "c"), ("b", "c")):
        for q in enc.paired[pair]:
            q_ = (q.mean, q.var)
            prior = kl_prior(q_).mean()
            members = [(r.mean, r.var) for m in pair for r in enc.paired[(m,)]]
            reversed_kl += prior + sum(kl(r, q_).mean() for r in members)
            forward_kl += prior + sum(kl(q_, r).mean() for r in members)
    value = float(model.loss(MultimodalBatch(paired=x)).terms["paired_subsets/kl"].detach())
    assert value == pytest.approx(float(reversed_kl.detach()), rel=1e-10)
    assert value != pytest.approx(float(forward_kl.detach()), rel=1e-3)
