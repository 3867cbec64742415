"""Decoder likelihoods p(x|z). A decoder network outputs raw parameters (logits or means); the likelihood
turns them into log p(x|z) per sample, summed over every non-batch dimension, and into a reconstruction.

Bernoulli decoders output logits: the paper's networks end in a Sigmoid, and BCE-with-logits is the
numerically stable form of exactly that likelihood.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _sum_per_sample(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).sum(-1)


class Likelihood:
    """Base class: ``log_prob(params, x)`` is (batch,), ``mean(params)`` is the reconstruction."""

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class Bernoulli(Likelihood):
    """Bernoulli with logits; targets may be binary or in [0, 1] (MNIST grey levels, as the paper)."""

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -_sum_per_sample(F.binary_cross_entropy_with_logits(params, x, reduction="none"))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)


@dataclass(frozen=True)
class Gaussian(Likelihood):
    """Normal with the decoder's output as mean and a fixed scale (the spectra decoder uses 1.0)."""

    scale: float = 1.0

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        z = (x - params) / self.scale
        return -_sum_per_sample(0.5 * z**2 + math.log(self.scale) + 0.5 * math.log(2 * math.pi))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params


@dataclass(frozen=True)
class Laplace(Likelihood):
    """Laplace with the decoder's output as location and a fixed scale (MMVAE uses 0.75 on images)."""

    scale: float = 0.75

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -_sum_per_sample((x - params).abs() / self.scale + math.log(2 * self.scale))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params


@dataclass(frozen=True)
class Categorical(Likelihood):
    """Independent categoricals per position: params (batch, length, classes), x (batch, length) of ids.

    Positions equal to ``ignore_index`` (padding) contribute nothing.
    """

    ignore_index: int = -100

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        nll = F.cross_entropy(params.transpose(1, 2), x.long(), ignore_index=self.ignore_index, reduction="none")
        return -_sum_per_sample(nll)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params.argmax(-1)
