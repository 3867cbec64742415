"""MNIST-SVHN: MMVAE's networks (Tables A.3 and A.4), modalities ``mnist`` (1 x 28 x 28) and ``svhn`` (3 x 32 x 32).

MNIST (Table A.3): flatten, FC 400 ReLU, heads FC L; decoder FC 400 ReLU, FC 784 reshaped to 1 x 28 x 28.
SVHN (Table A.4): 4x4 conv 32, 64, 128, stride 2, padding 1, ReLU each (3x32x32 -> 128x4x4), heads two 4x4 convs
to L channels, stride 1 (-> L x 1 x 1); decoder 4x4 transposed convs 128 (stride 1, from 1x1 to 4x4), 64, 32, 3
(stride 2, padding 1), ReLU between.

Deviations and choices:
- Likelihood: both modalities Bernoulli by default (pixels in [0, 1], as the poe-vaes protocol: ToTensor, no
  binarisation), so decoders output logits and the tables' final Sigmoid lives in the likelihood.
  ``likelihood="laplace"`` gives MMVAE's choice instead: Laplace with fixed scale ``laplace_scale`` (0.75),
  whose location is a pixel value, so the decoders then end in a Sigmoid, as MMVAE's.
- The SVHN body returns the 128 x 4 x 4 map flattened (2048 features); the head (:class:`ConvGaussianHead`)
  restores it before its 4x4 convolutions.
- Layers have biases, as MMVAE's.
"""

from __future__ import annotations

from torch import nn

from models.networks.layers import ConvGaussianHead, image_likelihood, image_output, mlp, mlp_decoder
from models.spec import ModalitySpec

MNIST_SHAPE = (1, 28, 28)
SVHN_SHAPE = (3, 32, 32)
SVHN_CHANNELS = (32, 64, 128)


def mnist_spec(likelihood: str = "bernoulli", laplace_scale: float = 0.75, hidden: int = 400) -> ModalitySpec:
    """Table A.3's MLP for 1 x 28 x 28 MNIST digits."""
    lik = image_likelihood(likelihood, laplace_scale)
    n_pixels = MNIST_SHAPE[0] * MNIST_SHAPE[1] * MNIST_SHAPE[2]

    def make_decoder(latent_dim: int) -> nn.Module:
        return nn.Sequential(*mlp_decoder(latent_dim, [hidden], MNIST_SHAPE), *image_output(lik))

    return ModalitySpec(
        make_body=lambda: nn.Sequential(nn.Flatten(), *mlp(n_pixels, [hidden])),
        feature_dim=hidden,
        make_decoder=make_decoder,
        likelihood=lik,
        shape=MNIST_SHAPE,
    )


def svhn_body() -> nn.Sequential:
    """3 x 32 x 32 -> (batch, 128 * 4 * 4)."""
    layers: list[nn.Module] = []
    in_ch = SVHN_SHAPE[0]
    for ch in SVHN_CHANNELS:
        layers += [nn.Conv2d(in_ch, ch, 4, 2, 1), nn.ReLU()]
        in_ch = ch
    return nn.Sequential(*layers, nn.Flatten())


def svhn_decoder(latent_dim: int, final: list[nn.Module]) -> nn.Sequential:
    """z -> 3 x 32 x 32: transposed convs 1 -> 4 -> 8 -> 16 -> 32 pixels, then the ``final`` layers."""
    c1, c2, c3 = reversed(SVHN_CHANNELS)
    return nn.Sequential(
        nn.Unflatten(1, (latent_dim, 1, 1)),
        nn.ConvTranspose2d(latent_dim, c1, 4, 1, 0),
        nn.ReLU(),
        nn.ConvTranspose2d(c1, c2, 4, 2, 1),
        nn.ReLU(),
        nn.ConvTranspose2d(c2, c3, 4, 2, 1),
        nn.ReLU(),
        nn.ConvTranspose2d(c3, SVHN_SHAPE[0], 4, 2, 1),
        *final,
    )


def svhn_spec(likelihood: str = "bernoulli", laplace_scale: float = 0.75) -> ModalitySpec:
    """Table A.4's conv nets for 3 x 32 x 32 SVHN images."""
    lik = image_likelihood(likelihood, laplace_scale)
    spatial = (SVHN_SHAPE[1] // 8, SVHN_SHAPE[2] // 8)
    return ModalitySpec(
        make_body=svhn_body,
        feature_dim=SVHN_CHANNELS[-1] * spatial[0] * spatial[1],
        make_decoder=lambda latent_dim: svhn_decoder(latent_dim, image_output(lik)),
        likelihood=lik,
        shape=SVHN_SHAPE,
        make_head=lambda _feature_dim, latent_dim: ConvGaussianHead(SVHN_CHANNELS[-1], spatial, latent_dim),
    )


def modalities(
    *, likelihood: str = "bernoulli", laplace_scale: float = 0.75, mnist_hidden: int = 400
) -> dict[str, ModalitySpec]:
    """The two modalities of MNIST-SVHN, ``mnist`` then ``svhn``."""
    return {
        "mnist": mnist_spec(likelihood, laplace_scale, mnist_hidden),
        "svhn": svhn_spec(likelihood, laplace_scale),
    }
