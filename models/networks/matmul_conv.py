"""Convolution layers computed as one matrix product on the CPU, where that beats the library's kernel.

:class:`MatmulConv2d` and :class:`MatmulConvTranspose2d` are ``nn.Conv2d`` and ``nn.ConvTranspose2d`` with the
same parameters, the same state_dict and the same function; only the CPU forward (and so its autograd graph) is
computed differently. On other devices, and where the gathered form would be slower, they call the library.

Why: at MNIST-Split's shapes some CPU kernels run far below the machine's matrix-product speed
(``benchmarks/conv_layers.py``; 1 thread, batch 200): the last encoder convolution (128 -> 256 channels, output
1 x 3), whose backward pass takes 3x its forward, and the decoder's first transposed convolution, whose 1 x 1
input makes it a plain matrix product, done by the library at a fifth of that speed; its last transposed
convolution, whose single output channel leaves the library's kernel little to work with. The first encoder layer's
output must be channels-last, which makes the library's second layer faster; the product gives that, and so does
the library given a channels-last view of the input, which is faster on some CPUs (timed in training, as below).
With fused Adam, this took a VAEVAE step of the paper's code's networks from about 0.42 s to 0.29 s
(``benchmarks/train_step.py``). The 64 -> 128 layer, which the library runs at about a core's peak product rate,
is computed in training with fewer multiply-adds by :mod:`.winograd_conv` where that is faster. The other layers
were timed the same way and the library is as fast or faster there.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from models.networks import timed_choice, winograd_conv
from models.networks.cpu_matmul import linear

#: Output positions up to which the input patches of a layer whose input needs a gradient are gathered, one slice
#: per output position. The backward of that gather writes one input-sized gradient per slice, so such layers
#: with more positions use the library.
MAX_GATHERED_POSITIONS = 8


def live_taps(size: int, kernel: int, stride: int, padding: int, out: int) -> tuple[int, int]:
    """[first, last + 1) of the kernel taps along one axis that meet the input (not only zero padding) for at
    least one of the ``out`` output positions. Taps outside multiply zeros only and are left out."""
    taps = [t for t in range(kernel) if any(0 <= o * stride + t - padding < size for o in range(out))]
    return taps[0], taps[-1] + 1


def _window_overlap(start: int, size: int, length: int) -> tuple[int, int, int]:
    """A window of ``size`` taps from ``start`` (in input coordinates; may reach into the padding) against an input
    of ``length``: (first tap inside the input, the input index it reads, how many taps read the input)."""
    first = max(0, -start)
    return first, start + first, max(0, min(size, length - start) - first)


class _GatherWindows(torch.autograd.Function):
    """The kh x kw windows of a zero-padded channels-last input (batch, h, w, channels), one per output position,
    as (batch, positions, kh, kw, channels). Its backward adds each window's gradient into one input-sized
    gradient, where autograd's stack of padded slices writes an input-sized gradient per window and then adds them."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, starts: list[tuple[int, int]], kh: int, kw: int) -> torch.Tensor:
        # per window: (first tap, first input index, taps inside) along rows, then along columns
        spans = [(_window_overlap(a, kh, x.shape[1]), _window_overlap(b, kw, x.shape[2])) for a, b in starts]
        ctx.meta = (x.shape, spans)
        patches = x.new_zeros(x.shape[0], len(starts), kh, kw, x.shape[3])
        for p, ((ta, ia, na), (tb, ib, nb)) in enumerate(spans):
            patches[:, p, ta : ta + na, tb : tb + nb] = x[:, ia : ia + na, ib : ib + nb]
        return patches

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        shape, spans = ctx.meta
        grad_x = grad.new_zeros(shape)
        for p, ((ta, ia, na), (tb, ib, nb)) in enumerate(spans):
            grad_x[:, ia : ia + na, ib : ib + nb] += grad[:, p, ta : ta + na, tb : tb + nb]
        return grad_x, None, None, None


class MatmulConv2d(nn.Conv2d):
    """``nn.Conv2d`` (groups 1, dilation 1, zero padding) as patches x weight on the CPU, for outputs of at most
    :data:`MAX_GATHERED_POSITIONS` positions (MNIST-Split's last encoder layer: 1 x 3) and for inputs that need
    no gradient (the first layer, which reads the data: its patches come from ``Tensor.unfold``; in training the
    library on a channels-last view of the input where that is faster, :meth:`_library_beats_product`). Kernel taps that
    meet only zero padding are left out of the product (a quarter of the last layer's work). The output is a
    channels-last view, which the next layer's library kernel reads faster. In training, a 4 x 4 stride-2 layer
    whose output fits one Winograd tile (MNIST-Split's 64 -> 128 layer, 3 x 7) is computed by
    :func:`~models.networks.winograd_conv.winograd_conv2d` with 2.6x fewer multiply-adds (its output laid out
    (row, column, batch, channel), which the next layer's gather reads as it is) where that is faster on the
    machine (:func:`~models.networks.winograd_conv.beats_library`). Other layers and devices use the library's
    kernel.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.groups != 1 or self.dilation != (1, 1) or self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("MatmulConv2d supports groups=1, dilation=1 and numeric zero padding only")

    def _output_size(self, h: int, w: int) -> tuple[int, int]:
        """(rows, columns) of this layer's output for an h x w input."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        oh, ow = self._output_size(*x.shape[2:])
        sliced = oh * ow <= MAX_GATHERED_POSITIONS
        cpu32 = x.device.type == "cpu" and x.dtype == torch.float32
        tile = (
            cpu32 and x.requires_grad and not sliced and winograd_conv.applies(self.kernel_size, self.stride, (oh, ow))
        )
        if tile and winograd_conv.beats_library(x, self.weight, self.padding):
            out = winograd_conv.winograd_conv2d(x, self.weight, self.padding)
            return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)
        if x.device.type != "cpu" or (x.requires_grad and not sliced):
            return super().forward(x)
        weight_gradient_only = cpu32 and not x.requires_grad and self.weight.requires_grad and torch.is_grad_enabled()
        if weight_gradient_only and not sliced and self._library_beats_product(x):
            return F.conv2d(_channels_last(x), self.weight, self.bias, self.stride, self.padding)
        return self._product(x, self.weight, self.bias)

    def _product(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """This layer of ``weight`` and ``bias`` as patches x weight, channels-last (class doc)."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        batch, _, h, w = x.shape
        oh, ow = self._output_size(h, w)
        r0, r1 = live_taps(h, kh, sh, ph, oh)
        c0, c1 = live_taps(w, kw, sw, pw, ow)
        kh, kw = r1 - r0, c1 - c0
        # Channels-last patches: the gather copies whole channel vectors, and the input's gradient comes back
        # channels-last, the layout of a library convolution's output before it (mixed layouts made that ReLU
        # backward slow; after the Winograd tile, a gradient in the tile's own layout was no faster).
        # Output position (i, j) reads input rows from i*sh - ph + r0 and columns from j*sw - pw + c0.
        top, left = ph - r0, pw - c0
        if oh * ow <= MAX_GATHERED_POSITIONS:
            starts = [(i * sh - top, j * sw - left) for i in range(oh) for j in range(ow)]
            patches = _GatherWindows.apply(x.permute(0, 2, 3, 1), starts, kh, kw)
        else:
            pads = (0, 0, left, (ow - 1) * sw + kw - w - left, top, (oh - 1) * sh + kh - h - top)
            xp = F.pad(x.permute(0, 2, 3, 1), pads)
            patches = xp.unfold(1, kh, sh).unfold(2, kw, sw).permute(0, 1, 2, 4, 5, 3)
        weight = weight[:, :, r0:r1, c0:c1].permute(0, 2, 3, 1).reshape(self.out_channels, -1)
        out = linear(patches.reshape(batch * oh * ow, -1), weight, bias)
        return out.view(batch, oh, ow, self.out_channels).permute(0, 3, 1, 2)

    def _library_beats_product(self, x: torch.Tensor) -> bool:
        """For an input without a gradient (the first layer, which reads the data): whether the library's kernel on
        a channels-last view of ``x`` (so that its output is channels-last, as the product's) computes this layer
        and its parameters' gradients faster than :meth:`_product`, timed once per shape
        (:func:`~models.networks.timed_choice.prefer`). On an AMD Zen 5 core it took 0.61 against 1.03 ms at
        MNIST-Split's batch of 200 and saved ~1 ms a VAEVAE step (-1.9 to +0.6 ms in 8 runs of interleaved pairs);
        on a Xeon the library took twice the product's time (``benchmarks/README.md``)."""

        def library(xr: torch.Tensor, wr: torch.Tensor, br: torch.Tensor | None) -> torch.Tensor:
            return F.conv2d(_channels_last(xr), wr, br, self.stride, self.padding)

        def calls() -> tuple[Callable[[], object], Callable[[], object]]:
            return timed_choice.forward_backward(
                (library, self._product), (x, self.weight, self.bias), (False, True, True)
            )

        key = ("library conv2d without an input gradient", tuple(x.shape), x.stride(), tuple(self.weight.shape))
        return timed_choice.prefer((*key, self.stride, self.padding, self.bias is not None), calls)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory, so that a library convolution of it gives a channels-last output. A contiguous
    one-channel input is laid out that way already; only its strides are made to say so (with equal strides for
    both layouts, the library takes it as NCHW and answers NCHW)."""
    if x.shape[1] == 1 and x.is_contiguous():
        return x.as_strided(x.shape, (x.shape[2] * x.shape[3], 1, x.shape[3], 1))
    return x.contiguous(memory_format=torch.channels_last)


class MatmulConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` computed as a matrix product on the CPU where that beats the library:

    - a 1 x 1 input (the decoder's first layer): each input vector times the weight is the whole
      (out_channels, kh, kw) output. The output is channels-last (the product's columns run over (kh, kw,
      out_channels)): the library's next transposed convolution is faster on a channels-last input, forward +
      backward 5.7 ms instead of 9.6 ms for MNIST-Split's 56 -> 28 layer at batch 200 (one AVX-512 core).
    - one output channel (the decoder's last layer, which draws the image): the product gives every input pixel's
      kh x kw block, and the blocks are added where they overlap (:func:`_overlap_add`). For MNIST-Split's
      28 -> 1 layer (kernel 2 x 4, 7 x 13 -> 14 x 28, batch 200) forward + backward took 3.4 ms against the
      library's 5.3 ms, and a VAEVAE step 4.7 ms less (median of 25 interleaved pairs; Xeon, one thread).

    Other layers (whose many overlapping channels make the overlap-add slower than the library; an ``F.fold``
    overlap-add was not faster either) use the library's kernel; on the CPU, where the layer has no padding,
    output padding, groups or dilation, without its bias, which is added after: oneDNN adds a transposed
    convolution's bias to a channels-last output (and sums its gradient) in its scalar reference code, which
    ``perf`` showed at ~2.6% of a VAEVAE step (-8 ms a step without it, median of 30 interleaved pairs). Other
    devices use the library's layer as it is.
    """

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        kh, kw = self.kernel_size
        plain = self.groups == 1 and self.padding == (0, 0) and self.output_padding == (0, 0)
        plain = plain and self.dilation == (1, 1)
        if output_size is not None:
            h, w = x.shape[-2:]
            natural = ((h - 1) * self.stride[0] + kh, (w - 1) * self.stride[1] + kw)
            plain = plain and tuple(output_size[-2:]) == natural  # otherwise an output padding is asked for
        if x.device.type != "cpu" or not plain:
            return super().forward(x, output_size)
        if x.shape[-2:] == (1, 1):
            weight = self.weight.permute(0, 2, 3, 1).reshape(self.in_channels, -1)
            out = linear(x.flatten(1), weight.t()).view(x.shape[0], kh, kw, self.out_channels).permute(0, 3, 1, 2)
        elif self.out_channels == 1:
            out = _overlap_add(x, self.weight, self.stride)
        else:
            out = F.conv_transpose2d(x, self.weight, None, self.stride)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


def _overlap_add(x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int]) -> torch.Tensor:
    """``F.conv_transpose2d(x, weight, stride=stride)`` (no padding, groups or dilation) as one product and an
    overlap-add, returned channels-last.

    Output pixel (s*i + a, s*j + b) receives input pixel (i - p, j - q) through kernel tap (a + s*p, b + s*q). With
    the kernel zero-padded to whole s x s blocks (p < ph, q < pw), the product of each input pixel with the weight
    gives its ph x pw blocks, and block (p, q) of input pixel (i - p, j - q) lands in output block (i, j): the output
    is the sum of ph * pw shifted copies of the product.
    """
    (sh, sw), (batch, cin, h, w) = stride, x.shape
    _, cout, kh, kw = weight.shape
    ph, pw = -(-kh // sh), -(-kw // sw)
    blocks = F.pad(weight, (0, pw * sw - kw, 0, ph * sh - kh)).permute(0, 2, 3, 1).reshape(cin, -1)
    taps = linear(x.permute(0, 2, 3, 1).reshape(-1, cin), blocks.t()).view(batch, h, w, ph, sh, pw, sw, cout)
    out = None
    for p in range(ph):
        for q in range(pw):
            # block (p, q) of every input pixel, shifted p block rows down and q block columns right
            shifted = F.pad(taps[:, :, :, p, :, q], (0, 0, 0, 0, 0, 0, q, pw - 1 - q, p, ph - 1 - p))
            out = shifted if out is None else out + shifted
    rows, cols = (h + ph - 1) * sh, (w + pw - 1) * sw
    out = out.permute(0, 1, 3, 2, 4, 5).reshape(batch, rows, cols, cout)
    return out[:, : (h - 1) * sh + kh, : (w - 1) * sw + kw].permute(0, 3, 1, 2)
