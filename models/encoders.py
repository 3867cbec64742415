"""Gaussian encoders: an experiment's encoder body followed by the two latent heads, and the VAEVAE joint
encoder (Appendix A: "a fully connected layer followed by ReLU is added to the encoding architecture for each
modality. Another fully connected layer accepts the concatenated features ... and outputs the latent space
parameters"; or the paper's code's layout, see :class:`JointEncoder`). The raw variance head becomes a variance
as :meth:`DiagonalGaussian.from_params` says (softplus by default)."""

from __future__ import annotations

import torch
from torch import nn

from models.gaussian import DiagonalGaussian, ExpertVariance
from models.networks.cpu_matmul import Linear
from models.spec import ModalitySpec


class LinearGaussianHead(nn.Module):
    """The "FC. L, FC. L" of the tables: features -> (mean, raw variance output)."""

    def __init__(self, feature_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.mean = Linear(feature_dim, latent_dim)
        self.logvar = Linear(feature_dim, latent_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean(h), self.logvar(h)


def make_head(spec: ModalitySpec, latent_dim: int) -> nn.Module:
    """The modality's own head if the experiment defines one, else the two linear layers."""
    if spec.make_head is not None:
        return spec.make_head(spec.feature_dim, latent_dim)
    return LinearGaussianHead(spec.feature_dim, latent_dim)


class GaussianEncoder(nn.Module):
    """x -> q(z|x) as a diagonal Gaussian: one network of the paper (a triangle of Figure 1)."""

    def __init__(self, spec: ModalitySpec, latent_dim: int, variance: ExpertVariance = "softplus") -> None:
        super().__init__()
        self.body = spec.make_body()
        self.head = make_head(spec, latent_dim)
        self.variance = variance

    def forward(self, x: torch.Tensor) -> DiagonalGaussian:
        mean, raw = self.head(self.body(x))
        return DiagonalGaussian.from_params(mean, raw, self.variance)


class JointEncoder(nn.Module):
    """q(z|x_S) for a subset S of modalities with its own networks (VAEVAE (b), JMVAE).

    Appendix A's layout: each modality of S gets its own copy of its encoder body plus FC(hidden) + ReLU; the
    concatenated features go through the two latent heads. When every modality of S defines
    ``make_joint_features`` (the paper's code, e.g. MNIST-Split's conv features), those features are
    concatenated and go through ONE FC(hidden) + ReLU before the heads (the code's ``InferenceJoint``).
    """

    def __init__(
        self, specs: dict[str, ModalitySpec], latent_dim: int, hidden: int, variance: ExpertVariance = "softplus"
    ) -> None:
        super().__init__()
        self.modalities = list(specs)
        self.variance = variance
        if all(spec.make_joint_features is not None for spec in specs.values()):
            self.bodies = nn.ModuleDict({name: spec.make_joint_features() for name, spec in specs.items()})
            width = sum(spec.joint_feature_dim for spec in specs.values())
            self.fuse: nn.Module = nn.Sequential(Linear(width, hidden), nn.ReLU())
            self.head = LinearGaussianHead(hidden, latent_dim)
        else:
            self.bodies = nn.ModuleDict(
                {
                    name: nn.Sequential(spec.make_body(), Linear(spec.feature_dim, hidden), nn.ReLU())
                    for name, spec in specs.items()
                }
            )
            self.fuse = nn.Identity()
            self.head = LinearGaussianHead(hidden * len(specs), latent_dim)

    def forward(self, xs: dict[str, torch.Tensor]) -> DiagonalGaussian:
        h = self.fuse(torch.cat([self.bodies[name](xs[name]) for name in self.modalities], dim=-1))
        mean, raw = self.head(h)
        return DiagonalGaussian.from_params(mean, raw, self.variance)
