"""The Winograd convolution computes the library's convolution: Toom-Cook identities in exact arithmetic, then
outputs and both gradients against a float64 reference on the MNIST-Split shapes and on edge shapes."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.networks import timed_choice, winograd_conv
from models.networks.winograd_conv import MAX_TILE, applies, beats_library, toom_cook, winograd_conv2d


@pytest.mark.parametrize("m", range(1, MAX_TILE + 1))
def test_toom_cook_is_a_two_tap_correlation(m: int) -> None:
    at, g, bt = toom_cook(m)
    assert at.shape == (m, m + 1) and g.shape == (m + 1, 2) and bt.shape == (m + 1, m + 1)
    rng = np.random.default_rng(m)
    taps, data = rng.standard_normal(2), rng.standard_normal(m + 1)
    direct = [taps[0] * data[k] + taps[1] * data[k + 1] for k in range(m)]
    np.testing.assert_allclose(at @ ((g @ taps) * (bt @ data)), direct, rtol=0, atol=1e-12)


def test_toom_cook_of_f_3_2_by_hand() -> None:
    # points 0, 1, -1 and infinity: the standard F(3, 2)
    at, g, bt = toom_cook(3)
    np.testing.assert_allclose(at, [[1, 1, 1, 0], [0, 1, -1, 0], [0, 1, 1, 1]])
    np.testing.assert_allclose(g, [[1, 0], [1, 1], [1, -1], [0, 1]])
    np.testing.assert_allclose(bt, [[1, 0, -1, 0], [0, 0.5, 0.5, 0], [0, -0.5, 0.5, 0], [0, -1, 0, 1]])


def test_applies_to_one_tile_of_a_4x4_stride_2_convolution_only() -> None:
    assert applies((4, 4), (2, 2), (3, 7))  # MNIST-Split's 64 -> 128 layer
    assert applies((4, 4), (2, 2), (2, 7))  # MNIST-Split-3's
    assert not applies((4, 4), (2, 2), (3, 14))  # two tiles along the columns
    assert not applies((3, 3), (2, 2), (3, 7))
    assert not applies((4, 4), (1, 1), (3, 7))


@pytest.mark.parametrize(
    "batch, cin, cout, shape, padding",
    [
        (6, 64, 128, (7, 14), (1, 1)),  # MNIST-Split's 64 -> 128 layer: output 3 x 7
        (5, 64, 128, (4, 14), (1, 1)),  # MNIST-Split-3 (and strips padded to 8 rows): output 2 x 7
        (3, 5, 7, (9, 9), (1, 1)),  # odd sizes, output 4 x 4
        (2, 3, 4, (7, 7), (0, 0)),  # no padding: the last input row and column are never read
        (2, 3, 4, (8, 5), (2, 1)),  # wider padding on one axis
        (1, 2, 3, (2, 2), (1, 1)),  # one output pixel
    ],
)
def test_winograd_conv2d_is_the_convolution(batch, cin, cout, shape, padding) -> None:
    torch.manual_seed(0)
    x = torch.randn(batch, *shape, cin).relu().permute(0, 3, 1, 2)  # channels-last, as the previous layer's output
    weight = torch.randn(cout, cin, 4, 4) / (4 * cin) ** 0.5
    x64, w64 = x.double().requires_grad_(), weight.double().requires_grad_()
    y64 = F.conv2d(x64, w64, None, 2, padding)
    assert applies((4, 4), (2, 2), tuple(y64.shape[-2:]))
    grad = torch.randn_like(y64)
    y64.backward(grad)

    x32, w32 = x.clone().requires_grad_(), weight.clone().requires_grad_()
    y32 = winograd_conv2d(x32, w32, padding)
    y32.backward(grad.float())
    # laid out (row, column, batch, channel), which the next layer's window gather reads as it is
    assert y32.shape == y64.shape and y32.permute(2, 3, 0, 1).is_contiguous()
    for ours, reference in ((y32, y64), (x32.grad, x64.grad), (w32.grad, w64.grad)):
        # fp32 with interpolation points up to 2 (and 2^6 in F(7, 2)'s output transform): ~3e-6 of the scale
        scale = reference.abs().max().item()
        torch.testing.assert_close(ours.double(), reference.detach(), rtol=0, atol=2e-5 * scale)


def test_winograd_conv2d_without_an_input_gradient() -> None:
    torch.manual_seed(1)
    x, weight = torch.randn(3, 4, 7, 14), torch.randn(6, 4, 4, 4).requires_grad_()
    winograd_conv2d(x, weight, (1, 1)).sum().backward()
    reference = weight.detach().clone().requires_grad_()
    F.conv2d(x, reference, None, 2, 1).sum().backward()
    torch.testing.assert_close(weight.grad, reference.grad, rtol=1e-4, atol=1e-4)


def _slowed(conv, calls: list[str], name: str):
    """``conv`` with 20 ms added to each call, counted in ``calls``."""

    def slow(*args):
        calls.append(name)
        time.sleep(0.02)
        return conv(*args)

    return slow


@pytest.mark.parametrize("slow", ["tile", "library"])
def test_beats_library_times_the_tile_against_the_library(monkeypatch, slow: str) -> None:
    monkeypatch.setattr(timed_choice, "_choices", {})
    calls: list[str] = []
    if slow == "tile":
        monkeypatch.setattr(winograd_conv, "winograd_conv2d", _slowed(winograd_conv2d, calls, "tile"))
    else:
        monkeypatch.setattr(winograd_conv, "_library_conv", _slowed(winograd_conv._library_conv, calls, "library"))
    x, weight = torch.randn(2, 4, 7, 14), torch.randn(6, 4, 4, 4)
    random_state = torch.get_rng_state()
    assert beats_library(x, weight, (1, 1)) is (slow == "library")
    assert torch.equal(torch.get_rng_state(), random_state)  # training's random stream is left as it was
    assert len(calls) == 2 * (timed_choice.TIMED_CALLS + 1)  # two rounds of one warm-up and the timed calls
    assert beats_library(x, weight, (1, 1)) is (slow == "library")
    assert len(calls) == 2 * (timed_choice.TIMED_CALLS + 1)  # timed once per shape
