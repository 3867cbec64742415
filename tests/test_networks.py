"""The networks of Appendix A (models/networks): shapes, strips, parameter counts by hand, overrides."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from models.likelihoods import Bernoulli, Categorical, Gaussian, Laplace
from models.networks import (
    EXPERIMENTS,
    experiment_defaults,
    experiment_modalities,
    network_options,
)
from models.networks.mnist_split import split_image, strip_rows, upconv_kernels
from models.spec import ModalitySpec

SMALL_SPECTRA = {"n_bins": 300, "n_bits": 64, "spectrum_hidden": (48, 32), "fingerprint_hidden": (40, 24)}
NAMES = {
    "mnist-split": ["top", "bottom"],
    "mnist-split-3": ["top", "middle", "bottom"],
    "mnist-svhn": ["mnist", "svhn"],
    "cub-captions": ["image", "caption"],
    "spectra": ["spectrum", "fingerprint"],
}
B = 2  # BatchNorm needs more than one sample in training mode


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def linear(i: int, o: int) -> int:
    return i * o + o


def head_of(spec: ModalitySpec, latent: int) -> nn.Module:
    """The head the models build: the spec's own, or the default two Linear(feature_dim, L)."""
    if spec.make_head is not None:
        return spec.make_head(spec.feature_dim, latent)

    class TwoLinear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mean, self.logvar = nn.Linear(spec.feature_dim, latent), nn.Linear(spec.feature_dim, latent)

        def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.mean(h), self.logvar(h)

    return TwoLinear()


def sample_input(spec: ModalitySpec, batch: int = B) -> torch.Tensor:
    if spec.dtype == "long":
        return torch.randint(0, 1590, (batch, *spec.shape))
    return torch.rand(batch, *spec.shape)


def param_shape(spec: ModalitySpec, batch: int = B) -> tuple[int, ...]:
    """What the decoder must output: the sample shape, plus the vocabulary axis for token ids."""
    if isinstance(spec.likelihood, Categorical):
        return (batch, *spec.shape, 1590)
    return (batch, *spec.shape)


def overrides_for(experiment: str) -> dict:
    return SMALL_SPECTRA if experiment == "spectra" else {}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_modality_names_follow_design(experiment: str) -> None:
    assert list(experiment_modalities(experiment, **overrides_for(experiment))) == NAMES[experiment]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_body_head_decoder_and_likelihood_fit_together(experiment: str) -> None:
    torch.manual_seed(0)
    latent = experiment_defaults(experiment)["latent_dim"]
    for spec in experiment_modalities(experiment, **overrides_for(experiment)).values():
        x = sample_input(spec)
        features = spec.make_body()(x)
        assert features.shape == (B, spec.feature_dim)
        mean, raw_logvar = head_of(spec, latent)(features)
        assert mean.shape == raw_logvar.shape == (B, latent)
        params = spec.make_decoder(latent)(torch.randn(B, latent))
        assert params.shape == param_shape(spec)
        log_p = spec.likelihood.log_prob(params, x)
        assert log_p.shape == (B,)
        assert torch.isfinite(log_p).all()


def test_likelihoods_and_dtypes() -> None:
    split = experiment_modalities("mnist-split")
    assert all(isinstance(s.likelihood, Bernoulli) and s.dtype == "float" for s in split.values())
    assert [s.shape for s in split.values()] == [(1, 14, 28), (1, 14, 28)]
    cub = experiment_modalities("cub-captions")
    assert cub["image"].likelihood == Laplace(scale=0.01) and cub["image"].weight == 0.002
    assert cub["image"].shape == (2048,)
    assert cub["caption"].dtype == "long" and cub["caption"].shape == (32,)
    assert cub["caption"].likelihood == Categorical(ignore_index=1)
    spectra = experiment_modalities("spectra")
    assert spectra["spectrum"].likelihood == Gaussian(scale=1.0) and spectra["spectrum"].shape == (11000,)
    assert isinstance(spectra["fingerprint"].likelihood, Bernoulli) and spectra["fingerprint"].shape == (2149,)


def test_bernoulli_decoders_output_unbounded_logits() -> None:
    """No final Sigmoid: the likelihood applies it, so the raw outputs are not confined to [0, 1]."""
    torch.manual_seed(0)
    dec = experiment_modalities("mnist-split")["top"].make_decoder(64)
    with torch.no_grad():
        out = dec(10 * torch.randn(64, 64))
    assert out.min() < 0


def test_svhn_laplace_option_ends_in_a_sigmoid() -> None:
    specs = experiment_modalities("mnist-svhn", likelihood="laplace")
    for spec in specs.values():
        assert spec.likelihood == Laplace(scale=0.75)
        with torch.no_grad():
            out = spec.make_decoder(20)(10 * torch.randn(8, 20))
        assert out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="likelihood"):
        experiment_modalities("mnist-svhn", likelihood="gaussian")


@pytest.mark.parametrize("drop_remainder", [True, False])
@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7])
def test_strips_are_contiguous_and_cover_the_rows(n: int, drop_remainder: bool) -> None:
    bounds = strip_rows(n, drop_remainder)
    assert len(bounds) == n and bounds[0][0] == 0
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    heights = [stop - start for start, stop in bounds]
    if drop_remainder:  # equal strips, the 28 mod n bottom rows dropped
        assert set(heights) == {28 // n} and bounds[-1][1] == 28 - 28 % n
    else:  # all 28 rows, heights differ by at most one
        assert bounds[-1][1] == 28 and max(heights) - min(heights) <= 1


def test_paper_strips() -> None:
    assert strip_rows(2) == [(0, 14), (14, 28)]
    assert strip_rows(3) == [(0, 9), (9, 18), (18, 27)]  # row 27 dropped, as the paper's code
    assert strip_rows(4) == [(0, 7), (7, 14), (14, 21), (21, 28)]
    assert strip_rows(3, drop_remainder=False) == [(0, 10), (10, 19), (19, 28)]
    with pytest.raises(ValueError):
        strip_rows(8)


@pytest.fixture(scope="module")
def digits(shared_data) -> torch.Tensor:
    """The first MNIST test digits as (B, 1, 28, 28) grey levels in [0, 1] (as ToTensor)."""
    images = np.load(shared_data / "mnist" / "mnist.npz")["x_test"][:B].astype(np.float32) / 255.0
    return torch.from_numpy(images).unsqueeze(1)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_mnist_split_n_on_real_digits(digits: torch.Tensor, n: int) -> None:
    """Real MNIST test digits cut into n strips run through every strip's networks, and the strips reassemble."""
    torch.manual_seed(0)
    x = digits
    specs = experiment_modalities("mnist-split-n", n=n)
    assert list(specs) == [f"strip{i + 1}" for i in range(n)]
    strips = split_image(x, n)
    kept = 28 - 28 % n
    assert torch.equal(torch.cat(strips, dim=2), x[:, :, :kept])
    for spec, strip in zip(specs.values(), strips, strict=True):
        assert strip.shape[1:] == spec.shape
        mean, raw_logvar = head_of(spec, 64)(spec.make_body()(strip))
        assert mean.shape == raw_logvar.shape == (B, 64)
        params = spec.make_decoder(64)(mean)
        assert params.shape == strip.shape
        assert torch.isfinite(spec.likelihood.log_prob(params, strip)).all()


def test_mnist_split_n_matches_the_named_experiments() -> None:
    for n, name in [(2, "mnist-split"), (3, "mnist-split-3")]:
        generic, named = experiment_modalities("mnist-split-n", n=n), experiment_modalities(name)
        assert [s.shape for s in generic.values()] == [s.shape for s in named.values()]


@pytest.mark.parametrize("size", range(4, 29))
def test_upconv_kernels_reach_the_size(size: int) -> None:
    k1, k2, k3 = upconv_kernels(size)
    assert k1 >= 1 and 2 <= k2 <= 5 and 2 <= k3 <= 5
    stack = nn.Sequential(*(nn.ConvTranspose1d(1, 1, k, stride=2) for k in (k1, k2, k3)))
    assert stack(torch.zeros(1, 1, 1)).shape[-1] == size


def test_upconv_kernels_reproduce_the_papers_code() -> None:
    assert upconv_kernels(14) == (3, 3, 2)  # (3,5), (3,5), (2,4) with the columns' kernels below
    assert upconv_kernels(28) == (5, 5, 4)
    assert upconv_kernels(9) == (2, 2, 3)


def test_mnist_split_encoder_parameters_by_hand() -> None:
    """Table A.2 for one 1 x 14 x 28 half, L = 64, convs without bias (as the paper's code)."""
    spec = experiment_modalities("mnist-split")["top"]
    convs = 1 * 64 * 4 * 4 + 64 * 128 * 4 * 4 + 128 * 256 * 4 * 4  # 1,024 + 131,072 + 524,288 = 656,384
    flat = 256 * (14 // 8) * (28 // 8)  # 14 x 28 -> 7 x 14 -> 3 x 7 -> 1 x 3: 768
    fc = linear(flat, 786)  # 768 * 786 + 786 = 604,434
    heads = 2 * linear(786, 64)  # 2 * 50,368 = 100,736
    assert convs + fc + heads == 1_361_554
    assert n_params(spec.make_body()) + n_params(head_of(spec, 64)) == 1_361_554


def test_mnist_split_decoder_parameters_by_hand() -> None:
    dec = experiment_modalities("mnist-split")["top"].make_decoder(64)
    fcs = linear(64, 64) + linear(64, 512) + linear(512, 112)  # 4,160 + 33,280 + 57,456
    upconvs = (112 * 56 * 3 * 5 + 56) + (56 * 28 * 3 * 5 + 28) + (28 * 1 * 2 * 4 + 1)  # 94,136 + 23,548 + 225
    assert n_params(dec) == fcs + upconvs == 212_805


def test_code_variant_matches_the_papers_svae_size() -> None:
    """fc_width=512 and no first decoder FC give the poe-vaes networks: its SVAE (q1, q2, q1*, q2* and two
    decoders) has 4,880,394 parameters (ANCHORS.md)."""
    spec = experiment_modalities("mnist-split", fc_width=512, decoder_first_fc=False)["top"]
    encoder = n_params(spec.make_body()) + n_params(head_of(spec, 64))
    decoder = n_params(spec.make_decoder(64))
    assert 4 * encoder + 2 * decoder == 4_880_394


def test_spectra_full_size_parameters_by_hand() -> None:
    """Table A.8/A.9 sizes, counted on the meta device (no memory is allocated for the ~350M weights)."""
    with torch.device("meta"):
        specs = experiment_modalities("spectra")
        s, f = specs["spectrum"], specs["fingerprint"]
        s_enc = n_params(s.make_body()) + n_params(head_of(s, 300))
        s_dec = n_params(s.make_decoder(300))
        f_enc = n_params(f.make_body()) + n_params(head_of(f, 300))
        f_dec = n_params(f.make_decoder(300))
        out = s.make_decoder(300)(torch.empty(4, 300))
    bn = 2  # BatchNorm1d: weight and bias per unit
    assert s_enc == (
        linear(11000, 10000) + bn * 10000 + linear(10000, 5000) + bn * 5000 + linear(5000, 2048) + bn * 2048
    ) + 2 * linear(2048, 300)
    assert s_dec == (
        linear(300, 3000) + bn * 3000 + linear(3000, 5000) + bn * 5000 + linear(5000, 10000) + bn * 10000
    ) + linear(10000, 11000)
    assert f_enc == linear(2149, 1024) + linear(1024, 1000) + 2 * linear(1000, 300)
    assert f_dec == linear(300, 500) + linear(500, 1024) + linear(1024, 2149)
    assert out.shape == (4, 11000)


def test_spectra_small_overrides() -> None:
    specs = experiment_modalities("spectra", **SMALL_SPECTRA)
    s, f = specs["spectrum"], specs["fingerprint"]
    assert (s.shape, f.shape, s.feature_dim, f.feature_dim) == ((300,), (64,), 32, 24)
    widths = [m.out_features for m in s.make_decoder(8) if isinstance(m, nn.Linear)]
    assert widths == [32, 48, 300]  # decoder = encoder widths reversed, then back to n_bins
    explicit = experiment_modalities("spectra", n_bins=50, spectrum_hidden=(16,), spectrum_decoder_hidden=(7, 9))
    widths = [m.out_features for m in explicit["spectrum"].make_decoder(8) if isinstance(m, nn.Linear)]
    assert widths == [7, 9, 50]
    default = experiment_modalities("spectra")["fingerprint"]
    widths = [m.out_features for m in default.make_decoder(8) if isinstance(m, nn.Linear)]
    assert widths == [500, 1024, 2149]  # the table's decoder, not the encoder mirrored


def test_cub_parameters_by_hand() -> None:
    specs = experiment_modalities("cub-captions")
    image, caption = specs["image"], specs["caption"]
    assert n_params(image.make_body()) + n_params(head_of(image, 64)) == (
        linear(2048, 1024) + linear(1024, 512) + linear(512, 256) + 2 * linear(256, 64)
    )
    assert n_params(image.make_decoder(64)) == (
        linear(64, 256) + linear(256, 512) + linear(512, 1024) + linear(1024, 2048)
    )
    convs = 1 * 32 * 16 + 32 * 64 * 16 + 64 * 128 * 16 + 128 * 256 * 4 + 256 * 512 * 4  # no bias (BatchNorm follows)
    bns = 2 * (32 + 64 + 128 + 256 + 512)
    heads = 2 * 512 * 64 * 16  # two 4x4 convs to L, no bias
    assert n_params(caption.make_body()) + n_params(head_of(caption, 64)) == 1590 * 128 + convs + bns + heads
    upconvs = 64 * 512 * 16 + 512 * 256 * 4 + 256 * 128 * 4 + 128 * 64 * 16 + 64 * 32 * 16 + 32 * 1 * 16
    bns = 2 * (512 + 256 + 128 + 64 + 32)
    assert n_params(caption.make_decoder(64)) == upconvs + bns + linear(128, 1590)


def test_caption_padding_is_ignored_and_embedded_as_zero() -> None:
    torch.manual_seed(0)
    spec = experiment_modalities("cub-captions")["caption"]
    body = spec.make_body()
    assert torch.count_nonzero(body[0].weight[1]) == 0  # padding_idx = the <pad> id 1
    x = torch.randint(3, 1590, (B, 32))
    x[:, 20:] = 1
    params = spec.make_decoder(64)(torch.randn(B, 64)).detach()
    changed = params.clone()
    changed[:, 20:] = torch.randn_like(changed[:, 20:])
    assert torch.allclose(spec.likelihood.log_prob(params, x), spec.likelihood.log_prob(changed, x))
    by_hand = -torch.nn.functional.cross_entropy(params[0, :20], x[0, :20], reduction="sum")
    assert math.isclose(spec.likelihood.log_prob(params, x)[0].item(), by_hand.item(), rel_tol=1e-5)


def test_caption_other_sizes() -> None:
    torch.manual_seed(0)
    spec = experiment_modalities("cub-captions", emb_dim=64, max_len=16, vocab_size=50)["caption"]
    x = torch.randint(0, 50, (B, 16))
    mean, raw_logvar = spec.make_head(spec.feature_dim, 10)(spec.make_body()(x))
    assert mean.shape == raw_logvar.shape == (B, 10)
    assert spec.make_decoder(10)(mean).shape == (B, 16, 50)
    with pytest.raises(ValueError, match="divisible"):
        experiment_modalities("cub-captions", emb_dim=100)


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown experiment"):
        experiment_modalities("mnist")
    with pytest.raises(ValueError, match="no network option"):
        experiment_modalities("spectra", hidden=(4, 4))
    with pytest.raises(ValueError, match="needs"):
        experiment_modalities("mnist-split-n")
    assert "n" in network_options("mnist-split-n") and "n" not in network_options("mnist-split")


def test_defaults() -> None:
    expected = {
        "mnist-split": (64, 2e-4, 100, 200),
        "mnist-split-3": (64, 2e-4, 100, 50),
        "mnist-svhn": (20, 1e-3, 256, 50),
        "cub-captions": (64, 1e-4, 100, 200),
        "spectra": (300, 1e-4, 250, 140),
    }
    for experiment, values in expected.items():
        d = experiment_defaults(experiment)
        assert (d["latent_dim"], d["lr"], d["batch_size"], d["epochs"]) == values
    assert experiment_defaults("mnist-svhn")["lr_svae"] == 1e-4
