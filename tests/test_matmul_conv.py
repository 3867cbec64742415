"""The matrix-product convolutions compute the library's convolutions: same outputs, same gradients, same
state_dict, on every shape the MNIST-Split networks use and on shapes that exercise the fallbacks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models import build_model
from models.networks import timed_choice, winograd_conv
from models.networks.matmul_conv import MatmulConv2d, MatmulConvTranspose2d, _channels_last, live_taps


def _compare(library: nn.Module, matmul: nn.Module, x: torch.Tensor) -> None:
    """Outputs and the gradients of the weights, bias and (when it needs one) the input agree."""
    matmul.load_state_dict(library.state_dict())
    x1 = x.detach().clone().requires_grad_(x.requires_grad)
    x2 = x.detach().clone().requires_grad_(x.requires_grad)
    y1, y2 = library(x1), matmul(x2)
    assert y1.shape == y2.shape
    torch.testing.assert_close(y2, y1, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(y1)
    y1.backward(grad)
    y2.backward(grad)
    for name, p in library.named_parameters():
        q = dict(matmul.named_parameters())[name]
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-4)
    if x.requires_grad:
        torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "cin, cout, shape, input_grad, bias",
    [
        (1, 64, (14, 28), False, False),  # first layer: gathered by unfold (no input gradient)
        (64, 128, (7, 14), True, False),  # 21 positions with an input gradient: one Winograd tile
        (128, 256, (3, 7), True, False),  # 1 x 3: gathered by slices, kernel row 0 only meets padding
        (128, 256, (2, 7), True, True),  # MNIST-Split-3's strips; a bias
        (3, 5, (9, 9), False, True),  # odd sizes: taps meet padding on the far side too
        (4, 6, (2, 2), True, True),  # one output pixel: only the kernel's two centre taps are live
    ],
)
def test_matmul_conv2d_is_the_library_convolution(cin, cout, shape, input_grad, bias) -> None:
    torch.manual_seed(0)
    x = torch.randn(5, cin, *shape).requires_grad_(input_grad)
    _compare(nn.Conv2d(cin, cout, 4, 2, 1, bias=bias), MatmulConv2d(cin, cout, 4, 2, 1, bias=bias), x)


def test_matmul_conv2d_on_a_channels_last_input() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 8, 3, 7).contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    _compare(nn.Conv2d(8, 16, 4, 2, 1), MatmulConv2d(8, 16, 4, 2, 1), x)


@pytest.mark.parametrize("tile_is_faster", [True, False])
def test_matmul_conv2d_uses_the_winograd_tile_where_it_is_faster(monkeypatch, tile_is_faster: bool) -> None:
    """MNIST-Split's 64 -> 128 layer in training: the tile (output laid out (row, column, batch, channel)) where
    :func:`winograd_conv.beats_library` says it is faster, else the library (channels-last, as its input)."""
    monkeypatch.setattr(winograd_conv, "beats_library", lambda *_: tile_is_faster)
    torch.manual_seed(0)
    x = torch.randn(5, 7, 14, 64).permute(0, 3, 1, 2).requires_grad_()
    _compare(nn.Conv2d(64, 128, 4, 2, 1, bias=False), MatmulConv2d(64, 128, 4, 2, 1, bias=False), x)
    y = MatmulConv2d(64, 128, 4, 2, 1, bias=False)(x)
    assert y.permute(2, 3, 0, 1).is_contiguous() is tile_is_faster


@pytest.mark.parametrize("library_is_faster", [True, False])
def test_first_layer_by_the_library_or_the_product(monkeypatch, library_is_faster: bool) -> None:
    """A layer whose input needs no gradient (the first, reading the data), in training: the library's kernel where
    it is faster, else the product; the library's output channels-last, as the product's."""
    monkeypatch.setattr(MatmulConv2d, "_library_beats_product", lambda *_: library_is_faster)
    torch.manual_seed(0)
    x = torch.rand(5, 1, 14, 28)
    _compare(nn.Conv2d(1, 64, 4, 2, 1, bias=False), MatmulConv2d(1, 64, 4, 2, 1, bias=False), x)
    y = MatmulConv2d(1, 64, 4, 2, 1, bias=True)(x)
    assert y.is_contiguous(memory_format=torch.channels_last) and y.stride(1) == 1
    assert ("Convolution" in type(y.grad_fn).__name__) is library_is_faster


def test_first_layer_choice_is_timed_on_the_layer(monkeypatch) -> None:
    monkeypatch.setattr(timed_choice, "_choices", {})
    layer, x = MatmulConv2d(1, 8, 4, 2, 1, bias=True), torch.rand(3, 1, 14, 28)
    state = torch.get_rng_state()
    assert isinstance(layer._library_beats_product(x), bool)
    assert torch.equal(torch.get_rng_state(), state)
    assert len(timed_choice._choices) == 1


def test_channels_last_view_of_a_one_channel_input_gives_a_channels_last_output() -> None:
    x, weight = torch.rand(2, 1, 14, 28), torch.randn(8, 1, 4, 4)
    assert F.conv2d(x, weight, None, 2, 1).is_contiguous()  # NCHW: the layouts' strides are equal for one channel
    y = F.conv2d(_channels_last(x), weight, None, 2, 1)
    assert y.stride(1) == 1
    torch.testing.assert_close(y, F.conv2d(x, weight, None, 2, 1))
    assert _channels_last(torch.rand(2, 3, 4, 5)).is_contiguous(memory_format=torch.channels_last)


def test_matmul_conv2d_reads_the_winograd_tiles_layout() -> None:
    """In training the 64 -> 128 tile's output is laid out (row, column, batch, channel); the last encoder layer
    reads it as it is."""
    torch.manual_seed(0)
    x = torch.randn(3, 7, 5, 128).permute(2, 3, 0, 1).requires_grad_()  # (batch, channel, row, column) view
    _compare(nn.Conv2d(128, 256, 4, 2, 1, bias=False), MatmulConv2d(128, 256, 4, 2, 1, bias=False), x)


def test_live_taps_by_hand() -> None:
    # 3 rows, kernel 4, stride 2, padding 1 -> one output row reading padded rows -1..2: tap 0 meets only padding
    assert live_taps(3, 4, 2, 1, 1) == (1, 4)
    # 7 columns -> 3 outputs reading -1..2, 1..4, 3..6: every tap meets the input somewhere
    assert live_taps(7, 4, 2, 1, 3) == (0, 4)
    # 1 pixel, kernel 3, padding 1: only the centre tap
    assert live_taps(1, 3, 1, 1, 1) == (1, 2)


def test_matmul_conv2d_refuses_what_it_does_not_compute() -> None:
    with pytest.raises(ValueError, match="groups=1"):
        MatmulConv2d(4, 4, 3, groups=2)
    with pytest.raises(ValueError, match="dilation=1"):
        MatmulConv2d(4, 4, 3, dilation=2)


@pytest.mark.parametrize(
    "cin, cout, kernel, shape, stride",
    [
        (112, 56, (3, 5), (1, 1), 2),  # the decoder's first upconv: a matrix product
        (56, 28, (3, 5), (3, 5), 2),  # overlapping blocks of many channels: the library
        (28, 1, (2, 4), (7, 13), 2),  # the last upconv (one channel): product + overlap-add of 2 shifts
        (28, 1, (3, 4), (4, 13), 2),  # MNIST-Split-3's last upconv: blocks overlap in both directions
        (5, 1, (5, 3), (3, 4), (3, 2)),  # unequal strides, a kernel row block that is half padding
        (5, 1, (2, 2), (3, 4), 2),  # kernel = stride: no overlap at all
    ],
)
def test_matmul_conv_transpose2d_is_the_library_convolution(cin, cout, kernel, shape, stride) -> None:
    torch.manual_seed(0)
    x = torch.randn(5, cin, *shape, requires_grad=True)
    library = nn.ConvTranspose2d(cin, cout, kernel, stride=stride)
    _compare(library, MatmulConvTranspose2d(cin, cout, kernel, stride=stride), x)


def test_matmul_conv_transpose2d_to_one_channel_on_a_channels_last_input() -> None:
    """The decoder's last layer reads the channels-last output of the library's previous layer."""
    torch.manual_seed(0)
    x = torch.randn(4, 28, 7, 13).contiguous(memory_format=torch.channels_last).requires_grad_()
    _compare(nn.ConvTranspose2d(28, 1, (2, 4), stride=2), MatmulConvTranspose2d(28, 1, (2, 4), stride=2), x)


def test_matmul_conv_transpose2d_of_a_1x1_input_is_channels_last() -> None:
    """The product's output comes channels-last: the library's next transposed convolution is faster on that
    layout (1.7x forward + backward for MNIST-Split's 56 -> 28 layer)."""
    layer = MatmulConvTranspose2d(112, 56, (3, 5), stride=2)
    out = layer(torch.randn(4, 112, 1, 1))
    assert out.shape == (4, 56, 3, 5)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_matmul_conv_transpose2d_honours_output_size_and_padding() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 6, 1, 1)
    library = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1)
    matmul = MatmulConvTranspose2d(6, 4, 3, stride=2, padding=1)
    matmul.load_state_dict(library.state_dict())
    torch.testing.assert_close(matmul(x), library(x))
    plain_lib, plain = nn.ConvTranspose2d(6, 4, 3, stride=2), MatmulConvTranspose2d(6, 4, 3, stride=2)
    plain.load_state_dict(plain_lib.state_dict())
    torch.testing.assert_close(plain(x, output_size=[4, 4]), plain_lib(x, output_size=[4, 4]))
    one_lib, one = nn.ConvTranspose2d(6, 1, (2, 4), stride=2), MatmulConvTranspose2d(6, 1, (2, 4), stride=2)
    one.load_state_dict(one_lib.state_dict())
    x = torch.randn(3, 6, 3, 5)
    torch.testing.assert_close(one(x), one_lib(x))  # the natural 6 x 12
    torch.testing.assert_close(one(x, output_size=[7, 13]), one_lib(x, output_size=[7, 13]))  # output padding


def test_mnist_split_networks_keep_their_state_dict_keys() -> None:
    """Models saved before the matrix-product layers load into the networks that have them."""
    model = build_model("svae", "mnist-split")
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert layers and all(isinstance(m, MatmulConv2d | MatmulConvTranspose2d) for m in layers)
    keys = set(model.state_dict())
    assert any(k.endswith("body.0.weight") for k in keys)
    rebuilt = build_model("svae", "mnist-split")
    rebuilt.load_state_dict(model.state_dict())
