"""Building blocks shared by the experiments' networks (Appendix A of the paper)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.likelihoods import Bernoulli, Laplace, Likelihood
from models.networks.cpu_matmul import Linear
from models.spec import ModalitySpec


def mlp(
    in_dim: int, widths: Sequence[int], activation: type[nn.Module] = nn.ReLU, batchnorm: bool = False
) -> nn.Sequential:
    """FC layers of the given widths, each followed by (BatchNorm1d and) the activation: "FC. w [BN] act" rows."""
    layers: list[nn.Module] = []
    for width in widths:
        layers.append(Linear(in_dim, width))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(activation())
        in_dim = width
    return nn.Sequential(*layers)


def mlp_decoder(
    latent_dim: int,
    widths: Sequence[int],
    out_shape: tuple[int, ...],
    activation: type[nn.Module] = nn.ReLU,
    batchnorm: bool = False,
) -> nn.Sequential:
    """z -> hidden FC layers -> a final linear layer (no activation) reshaped to ``out_shape``."""
    out_dim = int(torch.Size(out_shape).numel())
    last = widths[-1] if widths else latent_dim
    net = mlp(latent_dim, widths, activation, batchnorm)
    net.append(Linear(last, out_dim))
    if len(out_shape) > 1:
        net.append(nn.Unflatten(1, out_shape))
    return net


class ConvGaussianHead(nn.Module):
    """The "k x k conv. L stride 1, k x k conv. L stride 1" heads of Tables A.4 and A.5.

    The body hands over flattened features (batch, channels * height * width); the head restores the feature map
    and applies two convolutions whose kernel covers it entirely, so each gives (batch, L).
    """

    def __init__(self, channels: int, spatial: tuple[int, int], latent_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.unflatten = nn.Unflatten(1, (channels, *spatial))
        self.mean = nn.Conv2d(channels, latent_dim, spatial, 1, 0, bias=bias)
        self.logvar = nn.Conv2d(channels, latent_dim, spatial, 1, 0, bias=bias)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.unflatten(features)
        return self.mean(h).flatten(1), self.logvar(h).flatten(1)


def image_likelihood(name: str, laplace_scale: float) -> Likelihood:
    """The likelihood of an image modality with pixels in [0, 1]: "bernoulli" (logits) or "laplace"."""
    if name == "bernoulli":
        return Bernoulli()
    if name == "laplace":
        return Laplace(scale=laplace_scale)
    raise ValueError(f"unknown image likelihood {name!r}; use 'bernoulli' or 'laplace'")


def image_output(likelihood: Likelihood) -> list[nn.Module]:
    """Layers closing an image decoder: none for Bernoulli (it takes logits: the table's final Sigmoid lives in the
    likelihood); a Sigmoid for Laplace, whose location is the pixel value itself (as MMVAE's decoders)."""
    return [nn.Sigmoid()] if isinstance(likelihood, Laplace) else []


def vector_spec(
    dim: int,
    hidden: Sequence[int],
    decoder_hidden: Sequence[int],
    likelihood: Likelihood,
    activation: type[nn.Module] = nn.ReLU,
    batchnorm: bool = False,
    notes: dict[str, str] | None = None,
) -> ModalitySpec:
    """A flat vector modality of size ``dim``: MLP encoder body of widths ``hidden`` (features = last width) and
    MLP decoder of widths ``decoder_hidden`` ending in a linear layer back to ``dim``."""
    hidden, decoder_hidden = tuple(hidden), tuple(decoder_hidden)
    if not hidden:
        raise ValueError("the encoder needs at least one hidden layer")
    return ModalitySpec(
        make_body=lambda: mlp(dim, hidden, activation, batchnorm),
        feature_dim=hidden[-1],
        make_decoder=lambda latent_dim: mlp_decoder(latent_dim, decoder_hidden, (dim,), activation, batchnorm),
        likelihood=likelihood,
        shape=(dim,),
        notes=dict(notes or {}),
    )
