"""The models' math and gradient flow, pinned on small MLP modalities (the experiment networks are tested in
test_networks.py and trained on real MNIST in test_models_mnist.py)."""

import pytest
import torch
from torch import nn

from models import MODEL_NAMES, MultimodalBatch, build_model, product_of_experts
from models.gaussian import DiagonalGaussian
from models.likelihoods import Bernoulli, Gaussian
from models.spec import ModalitySpec

D, F, L = 6, 8, 3


def mlp_modality(dim: int = D, features: int = F, likelihood=None) -> ModalitySpec:
    return ModalitySpec(
        make_body=lambda: nn.Sequential(nn.Linear(dim, features), nn.ReLU()),
        feature_dim=features,
        make_decoder=lambda latent: nn.Sequential(nn.Linear(latent, features), nn.ReLU(), nn.Linear(features, dim)),
        likelihood=likelihood or Bernoulli(),
        shape=(dim,),
    )


def toy(n: int = 2) -> dict[str, ModalitySpec]:
    return {f"m{i}": mlp_modality() for i in range(n)}


def data(n_modalities: int, batch: int = 5) -> dict[str, torch.Tensor]:
    return {f"m{i}": torch.rand(batch, D).round() for i in range(n_modalities)}


def closed_form_poe(*experts: DiagonalGaussian, prior: bool) -> tuple[torch.Tensor, torch.Tensor]:
    precision = sum(torch.exp(-e.logvar) for e in experts) + (1.0 if prior else 0.0)
    mean = sum(torch.exp(-e.logvar) * e.mean for e in experts) / precision
    return mean, 1.0 / precision


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("n", [2, 3])
def test_every_model_gives_finite_loss_on_paired_unpaired_and_mixed_batches(name, n):
    torch.manual_seed(0)
    model = build_model(name, modalities=toy(n), latent_dim=L)
    x, u = data(n), data(n, batch=4)
    for batch in [
        MultimodalBatch(paired=x),
        MultimodalBatch(unpaired=u),
        MultimodalBatch(unpaired={"m0": u["m0"]}),
        MultimodalBatch(paired=x, unpaired=u),
    ]:
        out = model.loss(batch)
        assert out.total.dim() == 0 and torch.isfinite(out.total)
        assert all(torch.isfinite(t).all() for t in out.terms.values())
        if out.total.requires_grad:
            model.zero_grad()
            out.total.backward()
            assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("prior_expert", [False, True])
def test_svae_unimodal_posterior_is_product_of_q1_and_q2_star(prior_expert):
    torch.manual_seed(0)
    model = build_model("svae", modalities=toy(2), latent_dim=L, prior_expert=prior_expert)
    x = data(2)["m0"]
    q = model.posterior({"m0": x})
    q1 = model.experts["m0__from__m0"](x)
    q2_star = model.experts["m1__from__m0"](x)  # the replacement expert q_2^*(z|x_1)
    mean, var = closed_form_poe(q1, q2_star, prior=model.prior_expert)
    torch.testing.assert_close(q.mean, mean)
    torch.testing.assert_close(q.var, var)
    # the joint posterior is the product of the two modality experts only (eq. 3)
    xs = data(2)
    joint = model.posterior(xs)
    mean, var = closed_form_poe(
        model.experts["m0__from__m0"](xs["m0"]), model.experts["m1__from__m1"](xs["m1"]), prior=model.prior_expert
    )
    torch.testing.assert_close(joint.mean, mean)
    torch.testing.assert_close(joint.var, var)


def test_vaevae_a_equals_svae_with_replacement_experts_removed():
    torch.manual_seed(0)
    svae = build_model("svae", modalities=toy(2), latent_dim=L)
    vaevae_a = build_model("vaevae-a", modalities=toy(2), latent_dim=L)
    for m in ("m0", "m1"):
        vaevae_a.experts[f"{m}__from__{m}"].load_state_dict(svae.experts[f"{m}__from__{m}"].state_dict())
    # "setting q*(z|x1) = q*(z|x2) = 1": a replacement expert of vanishing precision (variance softplus(1e8))
    for key in ("m1__from__m0", "m0__from__m1"):
        head = svae.experts[key].head
        nn.init.zeros_(head.logvar.weight)
        nn.init.constant_(head.logvar.bias, 1e8)
    xs = data(2)
    for observed in ({"m0": xs["m0"]}, {"m1": xs["m1"]}, xs):
        a, b = svae.posterior(observed), vaevae_a.posterior(observed)
        torch.testing.assert_close(a.mean, b.mean, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(a.logvar, b.logvar, atol=1e-6, rtol=1e-5)
    assert vaevae_a.num_parameters() < svae.num_parameters()


def _grad_norms(module: nn.Module) -> float:
    return sum(0.0 if p.grad is None else p.grad.abs().sum().item() for p in module.parameters())


def test_unpaired_batch_trains_every_svae_network_of_q_z_given_x1():
    """Section 3.3: in SVAE, unpaired x1 updates both networks of q(z|x1) = q1 * q2*."""
    torch.manual_seed(0)
    model = build_model("svae", modalities=toy(2), latent_dim=L)
    model.loss(MultimodalBatch(unpaired={"m0": data(2)["m0"]})).total.backward()
    assert _grad_norms(model.experts["m0__from__m0"]) > 0  # q1
    assert _grad_norms(model.experts["m1__from__m0"]) > 0  # q2*(z|x1)
    assert _grad_norms(model.experts["m1__from__m1"]) == 0  # x2 was not observed
    assert _grad_norms(model.decoders["m0"]) > 0


def test_vaevae_joint_network_gets_no_gradient_from_unpaired_data():
    torch.manual_seed(0)
    model = build_model("vaevae", modalities=toy(2), latent_dim=L)
    u = data(2)
    model.loss(MultimodalBatch(unpaired=u)).total.backward()
    assert _grad_norms(model.joint) == 0
    assert _grad_norms(model.unimodal) > 0
    model.zero_grad()
    model.loss(MultimodalBatch(paired=data(2))).total.backward()
    assert _grad_norms(model.joint) > 0


def test_jmvae_ignores_unpaired_data_explicitly():
    torch.manual_seed(0)
    model = build_model("jmvae", modalities=toy(2), latent_dim=L)
    assert model.uses_unpaired is False
    x, u = data(2), data(2, batch=7)
    only_unpaired = model.loss(MultimodalBatch(unpaired=u))
    assert only_unpaired.total.item() == 0.0 and not only_unpaired.total.requires_grad
    assert only_unpaired.terms["ignored_unpaired"].item() == 14
    torch.manual_seed(1)
    paired_only = model.loss(MultimodalBatch(paired=x)).total
    torch.manual_seed(1)
    mixed = model.loss(MultimodalBatch(paired=x, unpaired=u))
    torch.testing.assert_close(mixed.total, paired_only)
    assert mixed.terms["ignored_unpaired"].item() == 14


def test_paired_batch_must_hold_every_modality():
    model = build_model("svae", modalities=toy(3), latent_dim=L)
    with pytest.raises(ValueError, match="every modality"):
        model.loss(MultimodalBatch(paired={"m0": data(3)["m0"], "m1": data(3)["m1"]}))


def test_svae_loss_is_vaevae_loss_plus_paired_unimodal_elbos():
    """Algorithm 1: SVAE's objective adds the unimodal ELBOs of the paired samples to the VAEVAE loss."""
    torch.manual_seed(0)
    svae = build_model("svae", modalities=toy(2), latent_dim=L)
    star = build_model("svae-star", modalities=toy(2), latent_dim=L)
    star.load_state_dict(svae.state_dict())
    batch = MultimodalBatch(paired=data(2), unpaired=data(2, batch=3))
    a, b = svae.loss(batch).terms, star.loss(batch).terms
    assert set(a) - set(b) == {"paired_unimodal/recon", "paired_unimodal/kl"}
    assert set(b) <= set(a)


def test_svae_three_modalities_uses_two_poe_rules_per_pair():
    """eq. 35-36: q(z|x_i, x_j) has two rules, q^i and q^j, differing in which replacement expert stands in."""
    torch.manual_seed(0)
    model = build_model("svae", modalities=toy(3), latent_dim=L)
    xs = data(3)
    rules = model.posterior_rules({"m0": xs["m0"], "m1": xs["m1"]})
    assert len(rules) == 2
    e = {
        k: model.experts[f"{k[0]}__from__{k[1]}"](xs[k[1]])
        for k in [("m0", "m0"), ("m1", "m1"), ("m2", "m0"), ("m2", "m1")]
    }
    for rule, source in zip(rules, ["m0", "m1"], strict=True):
        mean, var = closed_form_poe(e[("m0", "m0")], e[("m1", "m1")], e[("m2", source)], prior=model.prior_expert)
        torch.testing.assert_close(rule.mean, mean)
        torch.testing.assert_close(rule.var, var)
    # eq. 37: a single modality uses all of its own networks
    (single,) = model.posterior_rules({"m2": xs["m2"]})
    parts = [model.experts[f"m{i}__from__m2"](xs["m2"]) for i in range(3)]
    mean, _ = closed_form_poe(*parts, prior=model.prior_expert)
    torch.testing.assert_close(single.mean, mean)
    # the posterior API combines the two rules by their normalised geometric mean
    combined = model.posterior({"m0": xs["m0"], "m1": xs["m1"]})
    ref = product_of_experts(rules, weights=[0.5, 0.5])
    torch.testing.assert_close(combined.mean, ref.mean)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_parameter_counts_grow_as_in_figure_2(n):
    """SVAE: k n^2 encoder parameters; VAEVAE: k n 2^(n-1) (joint networks reuse the body architecture)."""
    k_body = D * F + F  # Linear(D, F)
    k = k_body + 2 * (F * L + L)  # body + the two heads
    svae = build_model("svae", modalities=toy(n), latent_dim=L)
    assert svae.encoder_parameters() == k * n * n
    hidden = 16
    vaevae = build_model("vaevae", modalities=toy(n), latent_dim=L, joint_hidden=hidden)
    from math import comb

    joint = sum(comb(n, s) * (s * (k_body + F * hidden + hidden) + 2 * (s * hidden * L + L)) for s in range(2, n + 1))
    assert vaevae.encoder_parameters() == n * k + joint
    # the leading term: bodies in VAEVAE's networks = sum_s s * C(n, s) = n 2^(n-1)
    assert sum(s * comb(n, s) for s in range(1, n + 1)) == n * 2 ** (n - 1)


def test_reconstruct_and_sample_shapes():
    torch.manual_seed(0)
    model = build_model(
        "svae", modalities={"a": mlp_modality(), "b": mlp_modality(4, likelihood=Gaussian())}, latent_dim=L
    )
    x = {"a": torch.rand(5, D), "b": torch.randn(5, 4)}
    rec = model.reconstruct({"a": x["a"]})
    assert rec["a"].shape == (5, D) and rec["b"].shape == (5, 4)
    assert ((rec["a"] >= 0) & (rec["a"] <= 1)).all()
    samples = model.sample(7)
    assert samples["a"].shape == (7, D) and samples["b"].shape == (7, 4)


def test_decode_of_named_modalities_runs_only_their_decoders():
    torch.manual_seed(0)
    model = build_model("svae", modalities={"a": mlp_modality(), "b": mlp_modality(4, likelihood=Gaussian())},
                        latent_dim=L).eval()  # fmt: skip
    z = torch.randn(5, L)
    ran = []
    model.decoders["a"].register_forward_hook(lambda *_: ran.append("a"))
    model.decoders["b"].register_forward_hook(lambda *_: ran.append("b"))
    every = model.decode(z)
    assert ran == ["a", "b"]
    ran.clear()
    only_b = model.decode(z, ["b"])
    assert ran == ["b"] and set(only_b) == {"b"}
    torch.testing.assert_close(only_b["b"], every["b"], rtol=0, atol=0)


def test_mmvae_posterior_of_several_modalities_is_a_mixture():
    torch.manual_seed(0)
    model = build_model("mmvae", modalities=toy(2), latent_dim=L, k=4)
    xs = data(2)
    q = model.posterior(xs)
    q0, q1 = (model.unimodal[m](xs[m]) for m in ("m0", "m1"))
    torch.testing.assert_close(q.mean, (q0.mean + q1.mean) / 2)
    second = ((q0.var + q0.mean**2) + (q1.var + q1.mean**2)) / 2
    torch.testing.assert_close(q.logvar.exp(), second - q.mean**2)
    assert q.rsample().shape == (5, L)


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vae", modalities=toy(2), latent_dim=L)
    with pytest.raises(ValueError, match="takes no"):
        build_model("svae", modalities=toy(2), latent_dim=L, k=3)
    model = build_model("svae", modalities=toy(2), latent_dim=L)
    with pytest.raises(ValueError, match="unknown modalities"):
        model.posterior({"m9": torch.rand(2, D)})


def test_likelihood_weight_scales_the_reconstruction_terms():
    """A modality's ``weight`` multiplies its log-likelihood (the paper's CUB code weights image features)."""
    torch.manual_seed(0)
    plain = build_model("vaevae-a", modalities=toy(2), latent_dim=L)
    weighted_specs = toy(2)
    weighted_specs["m0"].weight = 0.25
    weighted_specs["m1"].weight = 0.25
    weighted = build_model("vaevae-a", modalities=weighted_specs, latent_dim=L)
    weighted.load_state_dict(plain.state_dict())
    batch = MultimodalBatch(unpaired=data(2))
    torch.manual_seed(3)
    a = plain.loss(batch).terms
    torch.manual_seed(3)
    b = weighted.loss(batch).terms
    torch.testing.assert_close(b["unpaired_m0/recon"], 0.25 * a["unpaired_m0/recon"])
    torch.testing.assert_close(b["unpaired_m0/kl"], a["unpaired_m0/kl"])
