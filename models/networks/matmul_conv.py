"""Convolution layers computed as one matrix product on the CPU, where that beats the library's kernel.

:class:`MatmulConv2d` and :class:`MatmulConvTranspose2d` are ``nn.Conv2d`` and ``nn.ConvTranspose2d`` with the
same parameters, the same state_dict and the same function; only the CPU forward (and so its autograd graph) is
computed differently. On other devices, and where the gathered form would be slower, they call the library.

Why: at MNIST-Split's shapes some CPU kernels run far below the machine's matrix-product speed
(``benchmarks/conv_layers.py``; 1 thread, batch 200): the last encoder convolution (128 -> 256 channels, output
1 x 3), whose backward pass takes 3x its forward, and the decoder's first transposed convolution, whose 1 x 1
input makes it a plain matrix product, done by the library at a fifth of that speed. The first encoder layer is
no faster alone, but its channels-last output makes the library's second layer faster. With fused Adam, this took a
VAEVAE step of the paper's code's networks from about 0.42 s to 0.29 s (``benchmarks/train_step.py``). The other
layers were timed the same way and the library is as fast or faster there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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


class MatmulConv2d(nn.Conv2d):
    """``nn.Conv2d`` (groups 1, dilation 1, zero padding) as patches x weight on the CPU, for outputs of at most
    :data:`MAX_GATHERED_POSITIONS` positions (MNIST-Split's last encoder layer: 1 x 3) and for inputs that need
    no gradient (the first layer, which reads the data: its patches come from ``Tensor.unfold``). Kernel taps that
    meet only zero padding are left out of the product (a quarter of the last layer's work). The output is a
    channels-last view, which the next layer's library kernel reads faster. Other layers and devices use the
    library's kernel.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.groups != 1 or self.dilation != (1, 1) or self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("MatmulConv2d supports groups=1, dilation=1 and numeric zero padding only")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        batch, _, h, w = x.shape
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        sliced = oh * ow <= MAX_GATHERED_POSITIONS
        if x.device.type != "cpu" or (x.requires_grad and not sliced):
            return super().forward(x)
        r0, r1 = live_taps(h, kh, sh, ph, oh)
        c0, c1 = live_taps(w, kw, sw, pw, ow)
        kh, kw = r1 - r0, c1 - c0
        # Channels-last patches: the gather copies whole channel vectors, and the input's gradient comes back in
        # the channels-last layout of the previous layer's output (mixed layouts make its ReLU backward slow).
        # Pad so that output position o reads rows o*s .. o*s + kh - 1 of the padded input (tap r0 first).
        top, left = ph - r0, pw - c0
        pads = (0, 0, left, (ow - 1) * sw + kw - w - left, top, (oh - 1) * sh + kh - h - top)
        xp = F.pad(x.permute(0, 2, 3, 1), pads)
        if sliced:
            patches = torch.stack(
                [xp[:, i * sh : i * sh + kh, j * sw : j * sw + kw] for i in range(oh) for j in range(ow)], 1
            )
        else:
            patches = xp.unfold(1, kh, sh).unfold(2, kw, sw).permute(0, 1, 2, 4, 5, 3)
        weight = self.weight[:, :, r0:r1, c0:c1].permute(0, 2, 3, 1).reshape(self.out_channels, -1)
        out = linear(patches.reshape(batch * oh * ow, -1), weight, self.bias)
        return out.view(batch, oh, ow, self.out_channels).permute(0, 3, 1, 2)


class MatmulConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` that computes a 1 x 1 input as the matrix product it is on the CPU: each input
    vector times the weight is the whole (out_channels, kh, kw) output. Larger inputs (whose blocks overlap) and
    other devices use the library's kernel: an overlap-add by ``F.fold`` was not faster in a training step.

    The output is channels-last (the product's columns run over (kh, kw, out_channels)): the library's next
    transposed convolution is faster on a channels-last input, forward + backward 5.7 ms instead of 9.6 ms for
    MNIST-Split's 56 -> 28 layer at batch 200 (one AVX-512 core).
    """

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        kh, kw = self.kernel_size
        plain = self.groups == 1 and self.padding == (0, 0) and self.output_padding == (0, 0)
        if output_size is not None and tuple(output_size[-2:]) != (kh, kw):
            plain = False  # an output padding is asked for
        if x.device.type != "cpu" or x.shape[-2:] != (1, 1) or not plain:
            return super().forward(x, output_size)
        weight = self.weight.permute(0, 2, 3, 1).reshape(self.in_channels, -1)
        out = linear(x.flatten(1), weight.t()).view(x.shape[0], kh, kw, self.out_channels).permute(0, 3, 1, 2)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)
