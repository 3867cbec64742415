"""MNIST split into horizontal strips, one modality per strip (Tables A.2 and A.7).

Encoder (per strip, input 1 x h x 28): 4x4 conv 64, 128, 256, stride 2, padding 1, ReLU each; flatten; FC 786 ReLU;
heads FC L, FC L (the default linear head). Decoder: FC L ReLU, FC 512 ReLU, FC 112 ReLU, reshape to 112 x 1 x 1,
three transposed convolutions with stride 2 (56 and 28 channels with ReLU, then 1 channel of logits).

Where this deviates from the tables, and why:
- Input: both tables print "Input in R^{3x32x32}" (copied from the SVHN table); the strips are 1 x 14 x 28
  (MNIST-Split: top = rows 0-13, bottom = rows 14-27) and 1 x 9 x 28 (MNIST-Split-3: rows 0-8, 9-17, 18-26).
- "FC. 786" is kept as printed (``fc_width=786``), although the flattened conv output is 768 = 256 x 1 x 3 and
  the paper's code (poe-vaes) uses FC 512 here, so 786 is probably a typo for 768.
- The tables' decoders ("4x4 upconv 56 stride 1", "4x4/2x4 upconv 28 stride 2", and no layer down to one
  channel) cannot produce a 14 x 28 or 9 x 28 image. The transposed convolutions are those of the paper's code:
  kernels (3,5), (3,5), (2,4), stride 2 (1x1 -> 3x5 -> 7x13 -> 14x28). For other strip heights the height
  kernels are chosen by :func:`upconv_kernels` (the same rule gives (3,3,2) for 14 rows, (2,2,3) for 9 rows and
  (5,5,4) for the 28 columns, i.e. exactly the code's kernels).
- Table A.7 prints "2x4 upconv 28" and the three-strip code uses 37 channels; we keep 56 and 28 as in Table A.2
  (the three-strip code also asks a (3,5),(3,5),(2,4) stack for a 9 x 28 output, which cannot run).
- Convolutions have no bias, as in the paper's code (the tables do not say).
- The decoder ends in logits, not a Sigmoid: the Bernoulli likelihood applies it.

The paper's code differs in three more places: encoder FC 512 instead of 786, no "FC. L ReLU" first decoder
layer, and VAEVAE's joint network, which concatenates the two strips' conv features (768 each) and applies one
FC 512 + ReLU before the heads, where Appendix A adds an FC + ReLU per modality after the whole body.
``paper_code_nets=True`` builds exactly the code's networks: SVAE 4,880,394 parameters, VAEVAE 4,814,218, as the
code counts them (``fc_width=512, decoder_first_fc=False`` alone changes only the first two).

Strips for n modalities (:func:`strip_rows`): ``h = 28 // n`` rows each, top to bottom; the 28 - n*h remaining
bottom rows are dropped, as the paper's MNIST-Split-3 drops row 27 (``drop_remainder=False`` instead gives the
first 28 mod n strips one extra row, so the strips tile all 28 rows). Strips shorter than 8 rows (n >= 4) are
zero-padded at the bottom to 8 rows inside the encoder, since three stride-2 convolutions need 8 rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.likelihoods import Bernoulli
from models.networks.layers import mlp
from models.networks.matmul_conv import MatmulConv2d, MatmulConvTranspose2d
from models.spec import ModalitySpec

IMAGE_ROWS = IMAGE_COLS = 28
CONV_CHANNELS = (64, 128, 256)
UPCONV_CHANNELS = (112, 56, 28)
MIN_ROWS = 8  # three 4x4 stride-2 padding-1 convolutions halve the size three times: size // 8 >= 1


def strip_rows(n: int, drop_remainder: bool = True) -> list[tuple[int, int]]:
    """Row ranges [start, stop) of n horizontal strips of a 28-row image, top to bottom (see module doc)."""
    if not 2 <= n <= 7:
        raise ValueError(f"n must be in 2..7 (strips of at least 4 rows), got {n}")
    base, extra = divmod(IMAGE_ROWS, n)
    heights = [base + (1 if not drop_remainder and i < extra else 0) for i in range(n)]
    bounds, start = [], 0
    for h in heights:
        bounds.append((start, start + h))
        start += h
    return bounds


def upconv_kernels(size: int) -> tuple[int, int, int]:
    """Kernel sizes (k1, k2, k3) of three stride-2 transposed convolutions growing 1 pixel to ``size`` pixels.

    Sizes go 1 -> k1 -> 2(k1-1)+k2 -> 2(that-1)+k3. Kernels after the first must be >= 2 (the stride), so no
    output pixel is left without input; all are <= 5; among the solutions the lexicographically largest (k1, k2)
    is taken, which reproduces the paper's code: 14 -> (3,3,2), 28 -> (5,5,4).
    """
    for k1 in range(5, 0, -1):
        for k2 in range(5, 1, -1):
            k3 = size - 2 * (2 * (k1 - 1) + k2 - 1)
            if 2 <= k3 <= 5:
                return k1, k2, k3
    raise ValueError(f"no stride-2 transposed-convolution stack of kernels <= 5 gives size {size}")


def _conv_features(rows: int) -> int:
    """Flattened size of the conv stack's output for a (max(rows, 8)) x 28 input: 256 x rows//8 x 28//8."""
    return CONV_CHANNELS[-1] * (max(rows, MIN_ROWS) // 8) * (IMAGE_COLS // 8)


def conv_features(rows: int) -> nn.Sequential:
    """1 x rows x 28 -> (batch, 256 * rows//8 * 3): the conv stack of Table A.2, flattened."""
    layers: list[nn.Module] = []
    if rows < MIN_ROWS:
        layers.append(nn.ZeroPad2d((0, 0, 0, MIN_ROWS - rows)))
    in_ch = 1
    for ch in CONV_CHANNELS:
        layers += [MatmulConv2d(in_ch, ch, 4, 2, 1, bias=False), nn.ReLU()]
        in_ch = ch
    return nn.Sequential(*layers, nn.Flatten())


def encoder_body(rows: int, fc_width: int = 786) -> nn.Sequential:
    """1 x rows x 28 -> (batch, fc_width): the conv stack, flatten and FC ReLU of Table A.2."""
    return nn.Sequential(*conv_features(rows), *mlp(_conv_features(rows), [fc_width]))


def decoder(rows: int, latent_dim: int, decoder_first_fc: bool = True) -> nn.Sequential:
    """z -> 1 x rows x 28 logits: FC (L) 512 112 ReLU, then three stride-2 transposed convolutions."""
    widths = [latent_dim] if decoder_first_fc else []
    net = mlp(latent_dim, [*widths, 512, UPCONV_CHANNELS[0]])
    net.append(nn.Unflatten(1, (UPCONV_CHANNELS[0], 1, 1)))
    kernels = list(zip(upconv_kernels(rows), upconv_kernels(IMAGE_COLS), strict=True))
    channels = [*UPCONV_CHANNELS, 1]
    for i, kernel in enumerate(kernels):
        net.append(MatmulConvTranspose2d(channels[i], channels[i + 1], kernel, stride=2))
        if i < len(kernels) - 1:
            net.append(nn.ReLU())
    return net


def strip_spec(
    rows: int, fc_width: int = 786, decoder_first_fc: bool = True, note: str = "", joint_conv_features: bool = False
) -> ModalitySpec:
    """One strip of ``rows`` rows as a Bernoulli modality (pixels are grey levels in [0, 1], not binarised).
    ``joint_conv_features``: joint networks read the conv features (the paper's code), not the whole body."""
    return ModalitySpec(
        make_body=lambda: encoder_body(rows, fc_width),
        feature_dim=fc_width,
        make_decoder=lambda latent_dim: decoder(rows, latent_dim, decoder_first_fc),
        likelihood=Bernoulli(),
        shape=(1, rows, IMAGE_COLS),
        notes={"rows": note} if note else {},
        make_joint_features=(lambda: conv_features(rows)) if joint_conv_features else None,
        joint_feature_dim=_conv_features(rows) if joint_conv_features else 0,
    )


def modalities(
    n: int,
    names: Sequence[str] | None = None,
    *,
    drop_remainder: bool = True,
    fc_width: int = 786,
    decoder_first_fc: bool = True,
    paper_code_nets: bool = False,
) -> dict[str, ModalitySpec]:
    """n strips of MNIST as modalities named ``names`` (default strip1..stripN), top to bottom.
    ``paper_code_nets``: the networks of the paper's code (module doc); overrides ``fc_width`` and
    ``decoder_first_fc``."""
    if paper_code_nets:
        fc_width, decoder_first_fc = 512, False
    bounds = strip_rows(n, drop_remainder)
    names = list(names) if names is not None else [f"strip{i + 1}" for i in range(n)]
    if len(names) != n:
        raise ValueError(f"{n} strips need {n} names, got {names}")
    return {
        name: strip_spec(
            stop - start, fc_width, decoder_first_fc, f"rows {start}-{stop - 1}", joint_conv_features=paper_code_nets
        )
        for name, (start, stop) in zip(names, bounds, strict=True)
    }


def split_image(images: torch.Tensor, n: int, drop_remainder: bool = True) -> list[torch.Tensor]:
    """Cut (batch, 1, 28, 28) images into the n strips of :func:`strip_rows`."""
    return [images[..., start:stop, :] for start, stop in strip_rows(n, drop_remainder)]
