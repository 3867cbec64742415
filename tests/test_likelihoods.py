"""Decoder likelihoods against torch.distributions' log densities."""

import torch
from torch import distributions as D

from models.likelihoods import Bernoulli, Categorical, Gaussian, Laplace


def test_bernoulli_with_logits_matches_torch_including_grey_levels():
    logits, x = torch.randn(4, 1, 3, 5), torch.rand(4, 1, 3, 5).round()
    ref = D.Bernoulli(logits=logits).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(Bernoulli().log_prob(logits, x), ref)
    grey = torch.rand(4, 1, 3, 5)  # continuous targets: the cross-entropy form x log p + (1 - x) log(1 - p)
    p = torch.sigmoid(logits)
    ref = (grey * p.log() + (1 - grey) * (1 - p).log()).sum((1, 2, 3))
    torch.testing.assert_close(Bernoulli().log_prob(logits, grey), ref, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(Bernoulli().mean(logits), p)


def test_gaussian_and_laplace_match_torch():
    mean, x = torch.randn(3, 7), torch.randn(3, 7)
    torch.testing.assert_close(Gaussian(0.5).log_prob(mean, x), D.Normal(mean, 0.5).log_prob(x).sum(-1))
    torch.testing.assert_close(Laplace(0.75).log_prob(mean, x), D.Laplace(mean, 0.75).log_prob(x).sum(-1))


def test_categorical_skips_padding():
    logits, ids = torch.randn(2, 4, 6), torch.tensor([[3, 0, 5, 1], [2, 2, 1, 1]])
    per_position = D.Categorical(logits=logits).log_prob(ids)
    ref = (per_position * (ids != 1)).sum(-1)
    torch.testing.assert_close(Categorical(ignore_index=1).log_prob(logits, ids), ref)
    assert Categorical().mean(logits).shape == (2, 4)
