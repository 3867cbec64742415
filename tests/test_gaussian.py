"""The Gaussian algebra every model rests on, against closed forms and numerical integration."""

import math

import numpy as np
import pytest
import torch

from models.gaussian import DiagonalGaussian, kl_divergence, kl_to_standard, product_of_experts


def g(mean, var):
    mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1, 1)
    var = torch.as_tensor(var, dtype=torch.float64).reshape(-1, 1)
    return DiagonalGaussian(mean, var.log())


def test_product_of_two_gaussians_matches_closed_form():
    q = product_of_experts([g(1.0, 4.0), g(-2.0, 1.0)])
    # precision 1/4 + 1 = 1.25; mean = (1/4 * 1 + 1 * -2) / 1.25 = -1.4
    assert q.var.item() == pytest.approx(1 / 1.25)
    assert q.mean.item() == pytest.approx(-1.4)


def test_product_matches_numerical_integration_in_1d():
    experts = [g(0.7, 0.5), g(-1.3, 2.0), g(2.0, 3.0)]
    z = np.linspace(-15, 15, 200001)
    density = np.ones_like(z)
    for e in experts:
        m, v = e.mean.item(), e.var.item()
        density *= np.exp(-0.5 * (z - m) ** 2 / v) / math.sqrt(2 * math.pi * v)
    density /= np.trapezoid(density, z)
    mean = np.trapezoid(z * density, z)
    var = np.trapezoid((z - mean) ** 2 * density, z)
    q = product_of_experts(experts)
    assert q.mean.item() == pytest.approx(mean, abs=1e-6)
    assert q.var.item() == pytest.approx(var, rel=1e-6)


def test_prior_expert_is_one_more_standard_normal_expert():
    a, b = g([0.3, -1.0], [0.5, 2.0]), g([1.0, 2.0], [1.5, 0.2])
    with_prior = product_of_experts([a, b], prior_expert=True)
    explicit = product_of_experts([a, b, g([0.0, 0.0], [1.0, 1.0])])
    torch.testing.assert_close(with_prior.mean, explicit.mean)
    torch.testing.assert_close(with_prior.logvar, explicit.logvar)


def test_mask_removes_absent_experts_per_sample():
    a = g([0.3, -1.0, 2.0], [0.5, 2.0, 1.0])
    b = g([1.0, 2.0, -3.0], [1.5, 0.2, 4.0])
    mask = torch.tensor([[1, 1], [1, 0], [0, 1]])
    q = product_of_experts([a, b], mask=mask)
    both = product_of_experts([a[0:1], b[0:1]])
    torch.testing.assert_close(q[0:1].mean, both.mean)
    torch.testing.assert_close(q[1:2].mean, a[1:2].mean)
    torch.testing.assert_close(q[1:2].logvar, a[1:2].logvar)
    torch.testing.assert_close(q[2:3].mean, b[2:3].mean)
    with pytest.raises(ValueError, match="no expert left"):
        product_of_experts([a, b], mask=torch.tensor([[1, 1], [0, 0], [1, 0]]))
    # with the prior expert a sample may have no data expert: it gets the prior
    q = product_of_experts([a, b], mask=torch.tensor([[0, 0], [1, 1], [1, 1]]), prior_expert=True)
    assert q[0].mean.abs().max().item() == 0.0 and q[0].logvar.abs().max().item() == 0.0


def test_kl_matches_monte_carlo():
    torch.manual_seed(0)
    q = DiagonalGaussian(torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[0.2, -0.7, 0.4]]))
    p = DiagonalGaussian(torch.tensor([[-0.3, 0.0, 1.0]]), torch.tensor([[0.5, 0.1, -0.2]]))
    z = q.rsample(400_000)  # (n, 1, 3)
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).mean().item()
    assert kl_divergence(q, p).item() == pytest.approx(monte_carlo, abs=0.01)
    standard = DiagonalGaussian.standard(1, 3, q.mean)
    assert kl_to_standard(q).item() == pytest.approx(kl_divergence(q, standard).item(), rel=1e-6)
    assert kl_divergence(q, q).item() == pytest.approx(0.0, abs=1e-7)


def test_log_prob_matches_torch_normal():
    q = DiagonalGaussian(torch.randn(4, 3), torch.randn(4, 3))
    z = torch.randn(4, 3)
    ref = torch.distributions.Normal(q.mean, q.std).log_prob(z).sum(-1)
    torch.testing.assert_close(q.log_prob(z), ref)
