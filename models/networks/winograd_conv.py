"""A 4 x 4, stride-2 convolution with a small output as one Winograd tile: 2.6x fewer multiply-adds for MNIST-Split.

Why: the MNIST-Split encoders' 64 -> 128 convolution (input 7 x 14, output 3 x 7) is 57% of a VAEVAE training
step's arithmetic, and the library's kernel already runs it at about one core's peak product rate
(``benchmarks/README.md``), so only less arithmetic makes it faster. This computes the same function with fewer
multiplications, in three steps:

1. Space to depth. A 4 x 4 convolution with stride 2 is a 2 x 2 convolution with stride 1 over the input's four
   phases stacked as channels: input pixel (2r + p, 2c + q) of the zero-padded input is pixel (r, c) of channel
   group (p, q), and tap (2a + p, 2b + q) of the kernel is tap (a, b) of that group (``4 * in_channels`` channels).
2. Winograd's minimal filtering F(m, 2) along each axis (Lavin & Gray 2016; Toom-Cook with the points
   0, 1, -1, 2, -2, 1/2, -1/2 and infinity, :func:`toom_cook`): m outputs of a 2-tap correlation from m + 1
   products, ``y = A^T [(G g) * (B^T d)]``. Where each output axis has at most 7 positions, one tile covers the
   whole output, so no tiles overlap: the input is transformed once (``B^T d B`` over rows and columns, as one
   product with the Kronecker matrix of both axes' transforms, [32 x 32] for 3 x 7), the weight once
   (``G g G^T``), then (oh + 1)(ow + 1) matrix products [batch x 4C] x [4C x O] replace the oh * ow * 4 of the
   direct convolution (3 x 7: 32 against 84), and the output transform ``A^T M A`` adds them up.
3. The backward pass is the transpose of each step: products with the transposed matrices, and the same
   products of the saved transformed input and weight for the two gradients, so it needs 2.6x fewer
   multiply-adds too.

The transforms are exact in real arithmetic; in fp32 the largest interpolation point (2 and its powers up to
2^6 in the output transform of F(7, 2)) costs about one more decimal digit than the direct sum: relative errors
of ~3e-6 against ~1e-6 for the library, at MNIST-Split's shapes (``tests/test_winograd_conv.py``).

The input transform is one copy into the space-to-depth layout (one strided copy per phase) and that one product:
on an Intel Xeon core, where memory passes cost most, it took 33.3 against 38.6 ms forward + backward at batch 200
(and saved 16-19 ms a VAEVAE step) against the row transform written as ~14 strided sums of slices and the column
transform as a product of its own (``benchmarks/README.md``).

Its many large temporaries make it sensitive to the C library's allocator handing memory back to the system
between steps: the trainer keeps freed memory (:func:`training.cpu_heap.keep_freed_memory`).

Less arithmetic does not pay on every core: the transforms are passes over memory, and where the library's kernel
runs the layer fast enough they cost more than the products they save. :func:`beats_library` times both on the
machine, once per shape, and :class:`~models.networks.matmul_conv.MatmulConv2d` uses the tile where it is faster.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from models.networks import timed_choice

#: The finite interpolation points of F(m, 2), m <= 7, in the order they are used (infinity is the last point).
POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)
MAX_TILE = len(POINTS)


def toom_cook(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A^T, G, B^T)`` of F(m, 2): ``y_k = sum_t g_t d_(k+t)`` (k < m, t < 2) is ``A^T @ ((G @ g) * (B^T @ d))``.

    Correlation is the transpose of polynomial multiplication: with V the evaluation matrix of the m + 1 points
    for polynomials of m + 1 coefficients (the point at infinity reads the leading one) and Vg, Vh those for 2 and
    m coefficients, the product is ``V^-1 diag(Vg g) Vh``, so ``A^T = Vh^T``, ``G = Vg`` and ``B^T = V^-T``.
    """
    if not 1 <= m <= MAX_TILE:
        raise ValueError(f"F(m, 2) is built for 1 <= m <= {MAX_TILE}, got m={m}")
    n = m + 1

    def vandermonde(columns: int) -> np.ndarray:
        v = np.zeros((n, columns))
        for i, point in enumerate(POINTS[:m]):
            v[i] = [point**j for j in range(columns)]
        v[n - 1, columns - 1] = 1.0  # the point at infinity
        return v

    inverse = np.linalg.inv(vandermonde(n)).T
    inverse[np.abs(inverse) < 1e-12] = 0.0  # rounding left by the inverse where the exact entry is 0
    return vandermonde(m).T, vandermonde(2), inverse


@lru_cache
def _transforms(oh: int, ow: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For an oh x ow output, as fp32 tensors: the input transform ``B_c^T (x) B_r^T`` over (column point, row
    point) x (column, row) of the space-to-depth input, the weight transform over (column point, row point) x
    (column tap, row tap), and the output transform over (row, column) x (column point, row point)."""
    (a_r, g_r, b_r), (a_c, g_c, b_c) = toom_cook(oh), toom_cook(ow)
    out = np.kron(a_r, a_c).reshape(oh * ow, oh + 1, ow + 1).transpose(0, 2, 1).reshape(oh * ow, -1)
    as_tensor = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return as_tensor(np.kron(b_c, b_r)), as_tensor(np.kron(g_c, g_r)), as_tensor(out)


#: Along one axis of one phase: (first space-to-depth index that reads the input, how many do, the input index of
#: the first).
Span = tuple[int, int, int]


def _phases(size: int, padding: int, out: int) -> list[Span]:
    """Along one axis, per phase p = 0, 1 of the padded input: (first space-to-depth index that reads the input, how
    many do, the input index of the first); the others read zero padding."""
    spans = []
    for p in range(2):
        first = max(0, -(-(padding - p) // 2))
        stop = min(out + 1, (size - 1 + padding - p) // 2 + 1)
        spans.append((first, max(0, stop - first), 2 * first + p - padding))
    return spans


def applies(kernel: tuple[int, int], stride: tuple[int, int], out: tuple[int, int]) -> bool:
    """Whether a convolution (groups 1, dilation 1) with this kernel, stride and output size is one Winograd tile."""
    return kernel == (4, 4) and stride == (2, 2) and all(1 <= o <= MAX_TILE for o in out)


def _phase_spans(rows: list[Span], columns: list[Span]) -> list[tuple[int, int, Span, Span]]:
    """(p, q, row span, column span) of the four phases (p, q) of the padded input, from :func:`_phases`."""
    return [(p, q, rows[p], columns[q]) for p in range(2) for q in range(2)]


class _WinogradConv(torch.autograd.Function):
    """``F.conv2d(x, weight, None, 2, padding)`` for a 4 x 4 kernel and outputs of at most 7 x 7 (module doc);
    the output is laid out (row, column, batch, channel), as the output transform's product gives it: the copy to
    channels-last cost ~0.6 ms at batch 200, and the next layer (MNIST-Split's last encoder convolution, whose
    window gather copies its input anyway) reads this layout as fast."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
        batch, cin, h, w = x.shape
        cout = weight.shape[0]
        oh, ow = (h + 2 * padding[0] - 4) // 2 + 1, (w + 2 * padding[1] - 4) // 2 + 1
        bt, g, a = _transforms(oh, ow)
        # space to depth: s2d[c, r, b, p, q, ch] = x[b, 2r + p - ph, 2c + q - pw, ch], zero in the padding; one
        # strided copy per phase
        s2d = x.new_empty(ow + 1, oh + 1, batch, 2, 2, cin)
        xc = x.permute(0, 2, 3, 1)
        rows, columns = _phases(h, padding[0], oh), _phases(w, padding[1], ow)
        for p, q, (r0, nr, ir), (c0, nc, ic) in _phase_spans(rows, columns):
            phase = s2d[:, :, :, p, q]
            for padded in (phase[:c0], phase[c0 + nc :], phase[c0 : c0 + nc, :r0], phase[c0 : c0 + nc, r0 + nr :]):
                if padded.numel():
                    padded.zero_()
            inside = xc[:, ir : ir + 2 * nr - 1 : 2, ic : ic + 2 * nc - 1 : 2].permute(2, 1, 0, 3)
            phase[c0 : c0 + nc, r0 : r0 + nr].copy_(inside)
        # both axes' input transforms in one product; the tile index is (column point, row point)
        tiles = (oh + 1) * (ow + 1)
        x_t = torch.mm(bt, s2d.view(tiles, -1)).view(tiles, batch, 4 * cin)
        # weight[o, ch, 2a + p, 2b + q] -> (b, a) x (p, q, ch, o), through one plain transpose (a direct
        # six-axis permutation took 4-7x longer)
        taps = weight.reshape(cout, -1).t().contiguous().view(cin, 2, 2, 2, 2, cout).permute(3, 1, 2, 4, 0, 5)
        w_t = torch.mm(g, taps.reshape(4, -1)).view(tiles, 4 * cin, cout)
        y = torch.mm(a, torch.bmm(x_t, w_t).view(tiles, -1)).view(oh, ow, batch, cout)
        ctx.save_for_backward(x_t, w_t)
        ctx.meta = (x.shape, weight.shape, (rows, columns), (oh, ow))
        return y.permute(2, 3, 0, 1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x_t, w_t = ctx.saved_tensors
        (batch, cin, h, w), wshape, (rows, columns), (oh, ow) = ctx.meta
        cout, tiles = wshape[0], (oh + 1) * (ow + 1)
        bt, g, a = _transforms(oh, ow)
        grad_m = torch.mm(a.t(), grad.permute(2, 3, 0, 1).reshape(oh * ow, -1)).view(tiles, batch, cout)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x_t = torch.bmm(grad_m, w_t.transpose(1, 2))
            grad_s2d = torch.mm(bt.t(), grad_x_t.view(tiles, -1)).view(ow + 1, oh + 1, batch, 2, 2, cin)
            # every input pixel that some output reads is one (phase, space-to-depth index); the last row or
            # column of an input that the stride leaves unread gets zeros
            complete = sum(n for _, n, _ in rows) == h and sum(n for _, n, _ in columns) == w
            grad_x = grad.new_empty(batch, h, w, cin) if complete else grad.new_zeros(batch, h, w, cin)
            for p, q, (r0, nr, ir), (c0, nc, ic) in _phase_spans(rows, columns):
                inside = grad_s2d[c0 : c0 + nc, r0 : r0 + nr, :, p, q].permute(2, 1, 0, 3)
                grad_x[:, ir : ir + 2 * nr - 1 : 2, ic : ic + 2 * nc - 1 : 2] = inside
            grad_x = grad_x.permute(0, 3, 1, 2)
        if ctx.needs_input_grad[1]:
            grad_w_t = torch.bmm(x_t.transpose(1, 2), grad_m)
            grad_taps = torch.mm(g.t(), grad_w_t.view(tiles, -1)).view(2, 2, 2, 2, cin, cout)  # (b, a, p, q, ch, o)
            grad_w = grad_taps.permute(4, 1, 2, 0, 3, 5).reshape(cin * 16, cout).t().reshape(wshape)
        return grad_x, grad_w, None


def winograd_conv2d(x: torch.Tensor, weight: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
    """``F.conv2d(x, weight, None, stride=2, padding=padding)`` for a 4 x 4 kernel whose output has at most 7
    positions along each axis (:func:`applies`), by one Winograd tile (module doc); the output's memory is laid
    out (row, column, batch, channel)."""
    return _WinogradConv.apply(x, weight, padding)


def _library_conv(x: torch.Tensor, weight: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
    return F.conv2d(x, weight, None, 2, padding)


def beats_library(x: torch.Tensor, weight: torch.Tensor, padding: tuple[int, int]) -> bool:
    """Whether one Winograd tile computes ``F.conv2d(x, weight, None, 2, padding)`` with both gradients faster than
    the library on this machine (:func:`~models.networks.timed_choice.prefer`: both timed alone on random data of
    ``x``'s and ``weight``'s shapes and layouts, once per shape, layout and padding), each given a channels-last
    output gradient, the layout the next layer's backward gives it in a step.

    On an AMD EPYC Zen 4 core (AVX-512 on 256-bit units) the tile took 27.3 ms forward + backward at batch 200
    against the library's 31.4 ms and saved ~10 ms a VAEVAE step; on a Zen 5 core (full-width AVX-512), where the
    library runs MNIST-Split's layer at ~270 GFLOP/s, it took 19.4 against 15.5 ms and cost 13.6 ms a step
    (``benchmarks/README.md``).
    """

    def calls() -> tuple[Callable[[], object], Callable[[], object]]:
        forms = (lambda xr, wr: winograd_conv2d(xr, wr, padding), lambda xr, wr: _library_conv(xr, wr, padding))
        return timed_choice.forward_backward(forms, (x, weight), (True, True))

    return timed_choice.prefer(("winograd tile", tuple(x.shape), x.stride(), tuple(weight.shape), padding), calls)
