"""MS/MS spectra and molecular fingerprints: modalities ``spectrum`` and ``fingerprint`` (Tables A.8, A.9).

Spectrum (n_bins = 11,000 binned intensities): FC 10000, 5000, 2048, each with BatchNorm1d and ReLU, heads FC L;
decoder FC 3000, 5000, 10000 with BatchNorm1d and ReLU, FC n_bins. Gaussian likelihood with scale 1.0 (the paper's
code). Fingerprint (n_bits = 2,149): FC 1024, 1000 ReLU, heads FC L; decoder FC 500, 1024 ReLU, FC n_bits logits
(the table's Sigmoid lives in the Bernoulli likelihood).

Sizes are overridable so that small models can be built: ``spectrum_hidden`` / ``fingerprint_hidden`` set the
encoder widths. The decoder widths are the table's unless the encoder widths are overridden, in which case
they default to the encoder's widths reversed (the table's decoders are not exact mirrors: 3000 vs 2048 and 500
vs 1000); ``spectrum_decoder_hidden`` / ``fingerprint_decoder_hidden`` set them explicitly.

``spectrum_mean_bound``: bound the spectrum decoder's mean to [0, bound] (``bound * sigmoid(output)``), as the
paper's code bounds it to [0, ln 101] for log(1 + intensity on a 0-100 scale) (``BinningSpec(intensity=
"log1p-relative")``); a smooth bound instead of the paper's clamp, so that no output unit loses its gradient.
``spectrum_weight`` / ``fingerprint_weight``: factors on each modality's log-likelihood in every loss term (the
paper weights both by 1; other weights are beyond the paper).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from models.likelihoods import Bernoulli, Gaussian
from models.networks.layers import vector_spec
from models.spec import ModalitySpec

N_BINS = 11_000
N_BITS = 2_149
SPECTRUM_HIDDEN = (10_000, 5_000, 2_048)
SPECTRUM_DECODER_HIDDEN = (3_000, 5_000, 10_000)
FINGERPRINT_HIDDEN = (1_024, 1_000)
FINGERPRINT_DECODER_HIDDEN = (500, 1_024)


def _decoder_widths(
    hidden: Sequence[int] | None,
    decoder_hidden: Sequence[int] | None,
    table: tuple[int, ...],
    table_dec: tuple[int, ...],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(encoder, decoder) widths: the table's, or the overrides; decoder = reversed encoder if only it is set."""
    enc = table if hidden is None else tuple(hidden)
    if decoder_hidden is not None:
        return enc, tuple(decoder_hidden)
    return enc, table_dec if hidden is None else enc[::-1]


class BoundedMean(nn.Module):
    """``bound * sigmoid(x)``: a decoder output squashed into (0, bound)."""

    def __init__(self, bound: float) -> None:
        super().__init__()
        if not bound > 0:
            raise ValueError(f"the mean bound must be positive, got {bound}")
        self.bound = float(bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bound * torch.sigmoid(x)

    def extra_repr(self) -> str:
        return f"bound={self.bound:g}"


def modalities(
    *,
    n_bins: int = N_BINS,
    n_bits: int = N_BITS,
    spectrum_hidden: Sequence[int] | None = None,
    spectrum_decoder_hidden: Sequence[int] | None = None,
    fingerprint_hidden: Sequence[int] | None = None,
    fingerprint_decoder_hidden: Sequence[int] | None = None,
    spectrum_scale: float = 1.0,
    spectrum_mean_bound: float | None = None,
    spectrum_weight: float = 1.0,
    fingerprint_weight: float = 1.0,
) -> dict[str, ModalitySpec]:
    """The two modalities of the spectra experiment, ``spectrum`` then ``fingerprint``."""
    s_enc, s_dec = _decoder_widths(spectrum_hidden, spectrum_decoder_hidden, SPECTRUM_HIDDEN, SPECTRUM_DECODER_HIDDEN)
    f_enc, f_dec = _decoder_widths(
        fingerprint_hidden, fingerprint_decoder_hidden, FINGERPRINT_HIDDEN, FINGERPRINT_DECODER_HIDDEN
    )
    spectrum = vector_spec(n_bins, s_enc, s_dec, Gaussian(scale=spectrum_scale), batchnorm=True)
    if spectrum_mean_bound is not None:
        unbounded = spectrum.make_decoder
        spectrum = replace(
            spectrum, make_decoder=lambda latent: nn.Sequential(*unbounded(latent), BoundedMean(spectrum_mean_bound))
        )
    return {
        "spectrum": replace(spectrum, weight=spectrum_weight),
        "fingerprint": replace(
            vector_spec(n_bits, f_enc, f_dec, Bernoulli(), batchnorm=False), weight=fingerprint_weight
        ),
    }
