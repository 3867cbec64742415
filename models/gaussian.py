"""Diagonal Gaussians: reparameterised sampling, the product of experts and the analytic KL.

Every posterior in this package is a :class:`DiagonalGaussian` with a mean and a log-variance of shape
(batch, latent). The product of Gaussian experts is again Gaussian, with precision equal to the sum of the
experts' precisions and mean equal to the precision-weighted mean of their means; it is computed in closed
form, never by sampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch.nn import functional as F

#: How an expert's raw network output becomes its variance (see :meth:`DiagonalGaussian.from_params`).
ExpertVariance = Literal["softplus", "exp"]
EXPERT_VARIANCES: tuple[str, ...] = ("softplus", "exp")
# softplus: a floor keeps the precision finite (1e6) when softplus underflows; it leaves every gradient intact.
VARIANCE_FLOOR = 1e-6
# exp (the old head): the log-variance is clamped so that exp() neither overflows nor gives zero precision.
LOGVAR_MIN, LOGVAR_MAX = -18.0, 18.0


@dataclass(frozen=True)
class DiagonalGaussian:
    """N(mean, diag(exp(logvar))) for a batch: both tensors of shape (batch, latent)."""

    mean: torch.Tensor
    logvar: torch.Tensor

    @property
    def var(self) -> torch.Tensor:
        return self.logvar.exp()

    @property
    def std(self) -> torch.Tensor:
        return (0.5 * self.logvar).exp()

    def rsample(self, n: int | None = None) -> torch.Tensor:
        """Reparameterised sample(s): (batch, latent), or (n, batch, latent) when n is given."""
        shape = self.mean.shape if n is None else (n, *self.mean.shape)
        eps = torch.randn(shape, dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + eps * self.std

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; mean, var) summed over the latent dimension; z broadcasts as (..., batch, latent)."""
        return -0.5 * (((z - self.mean) ** 2) / self.var + self.logvar + math.log(2 * math.pi)).sum(-1)

    def detach(self) -> DiagonalGaussian:
        return DiagonalGaussian(self.mean.detach(), self.logvar.detach())

    def __getitem__(self, index: slice | torch.Tensor) -> DiagonalGaussian:
        return DiagonalGaussian(self.mean[index], self.logvar[index])

    @staticmethod
    def standard(batch: int, latent: int, like: torch.Tensor) -> DiagonalGaussian:
        """The N(0, I) prior for a batch, on the device and dtype of ``like``."""
        zeros = torch.zeros(batch, latent, dtype=like.dtype, device=like.device)
        return DiagonalGaussian(zeros, zeros)

    @staticmethod
    def from_params(mean: torch.Tensor, raw: torch.Tensor, variance: ExpertVariance = "softplus") -> DiagonalGaussian:
        """Build an expert from a network's two heads: the mean, and a raw output that sets the variance.

        ``"softplus"`` (default): var = softplus(raw) + 1e-6, the parametrisation of the paper's code (its experts
        output a softplus "scale", and pixyz 0.1.2's product of normals takes 1/scale as the precision, so inside
        every product the softplus output is the variance). It is smooth everywhere: an expert that drifts
        towards an uninformative variance keeps a gradient that brings it back (d log var / d raw = sigmoid(raw)
        / softplus(raw) ~ 1/raw for large raw).

        ``"exp"``: log var = raw clamped to [-18, 18], the head of models saved before 2026-11-29. Past the
        clamp its gradient is exactly zero; with the N(0, I) prior expert in a product, whose zero-KL state lies
        at var -> infinity, experts were seen to run into the upper clamp and stay there (every KL 0.000 by step
        50 on MNIST-Split). Kept only so that those saved models load and predict unchanged.
        """
        if variance == "softplus":
            return DiagonalGaussian(mean, torch.log(F.softplus(raw) + VARIANCE_FLOOR))
        if variance == "exp":
            return DiagonalGaussian(mean, raw.clamp(LOGVAR_MIN, LOGVAR_MAX))
        raise ValueError(f"expert variance must be one of {EXPERT_VARIANCES}, not {variance!r}")


def product_of_experts(
    experts: Sequence[DiagonalGaussian],
    mask: torch.Tensor | None = None,
    prior_expert: bool = False,
    weights: Sequence[float] | None = None,
) -> DiagonalGaussian:
    """The normalised product of diagonal Gaussian experts, in closed form.

    precision = sum_i w_i / var_i (+ 1 for the N(0, I) prior expert), mean = sum_i w_i mean_i / var_i / precision.

    Args:
        experts: Gaussians of equal shape (batch, latent).
        mask: optional (batch, n_experts) of 0/1 (or bool): expert i is absent for sample b where
            mask[b, i] == 0. A sample must keep at least one expert unless ``prior_expert`` is set.
        prior_expert: include N(0, I) as one more expert (as the paper's code does).
        weights: optional exponent of each expert (a geometric weighting; 1 for all by default).
    """
    if not experts and not prior_expert:
        raise ValueError("product_of_experts needs at least one expert")
    means = torch.stack([e.mean for e in experts])  # (E, B, L)
    logvars = torch.stack([e.logvar for e in experts])
    precisions = torch.exp(-logvars)
    if weights is not None:
        w = torch.as_tensor(weights, dtype=means.dtype, device=means.device).view(-1, 1, 1)
        precisions = precisions * w
    if mask is not None:
        m = mask.to(means.dtype).t().unsqueeze(-1)  # (E, B, 1)
        if not prior_expert and bool((m.sum(0) == 0).any()):
            raise ValueError("a sample has no expert left after masking and there is no prior expert")
        precisions = precisions * m
    total_precision = precisions.sum(0)
    weighted_means = (precisions * means).sum(0)
    if prior_expert:
        total_precision = total_precision + 1.0  # N(0, I): precision 1, mean 0
    mean = weighted_means / total_precision
    return DiagonalGaussian(mean, -torch.log(total_precision))


def kl_divergence(q: DiagonalGaussian, p: DiagonalGaussian) -> torch.Tensor:
    """KL(q || p) between diagonal Gaussians, summed over the latent dimension: shape (batch,)."""
    return 0.5 * (p.logvar - q.logvar + (q.var + (q.mean - p.mean) ** 2) / p.var - 1.0).sum(-1)


def kl_to_standard(q: DiagonalGaussian) -> torch.Tensor:
    """KL(q || N(0, I)) summed over the latent dimension: shape (batch,)."""
    return 0.5 * (q.var + q.mean**2 - 1.0 - q.logvar).sum(-1)
