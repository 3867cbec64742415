"""The matrix products of training on non-Intel x86 CPUs through oneDNN, which uses the core's widest vector
instructions.

PyTorch's CPU ``mm``/``addmm`` (so ``nn.Linear`` and the matmul convolutions of :mod:`.matmul_conv`) call MKL's
sgemm, and MKL runs its AVX2 code on AMD processors even where the core has AVX-512; oneDNN (PyTorch's
``mkldnn``), which the library's convolutions already use, picks the core's own instructions. On an AMD EPYC core
with AVX-512 (one thread) a [600 x 1536] x [1536 x 256] product takes 4.5 ms by MKL and 2.0 ms by oneDNN (105 vs
240 GFLOP/s). On Intel, MKL runs its AVX-512 code and beats oneDNN at these shapes: a step's products took 21.6 ms
by MKL and 25.0 ms by oneDNN on a Xeon with AVX-512 (``benchmarks/cpu_matmul.py``, ``cpu_matmul-intel.json``).

:func:`linear` is ``F.linear`` with its forward product and both backward products (input and weight gradients)
done by oneDNN, in fp32 as MKL does them, when a gradient is wanted on the CPU of a machine where
:data:`ONEDNN_PRODUCTS` holds; inference keeps the library's path (no oneDNN kernel to build for every new batch
size of a serving process). :class:`Linear` is ``nn.Linear`` with that forward, same parameters and state_dict.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

#: Products smaller than this many multiply-adds stay with the library: a oneDNN call costs ~11 us before any work
#: (the library's 1.5 us), and the two break even at about 2^20 (200 x 64 x 64: 17 us each, one AVX-512 core).
MIN_MULTIPLY_ADDS = 1 << 20


def onednn_beats_mkl(vendor: str) -> bool:
    """Whether oneDNN's products beat MKL's on an x86 CPU of this ``vendor_id``: MKL picks its widest code on
    Intel's processors only (module doc). Unknown vendors (other architectures, no /proc) keep the library."""
    return vendor not in ("", "GenuineIntel")


def cpu_info() -> dict[str, str]:
    """The fields of the first processor in /proc/cpuinfo ("vendor_id", "cpu family", "model", "model name", ...);
    empty where there is none."""
    fields: dict[str, str] = {}
    try:
        with Path("/proc/cpuinfo").open() as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    if fields:
                        break  # the end of the first processor's block
                    continue
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_vendor() -> str:
    """The ``vendor_id`` of /proc/cpuinfo ("GenuineIntel", "AuthenticAMD", ...); "" where there is none."""
    return cpu_info().get("vendor_id", "")


#: Whether training's products on this machine's CPU go through oneDNN (:func:`onednn_beats_mkl`).
ONEDNN_PRODUCTS = onednn_beats_mkl(cpu_vendor())


def dense(m: torch.Tensor) -> torch.Tensor:
    """A 2-D tensor as it is where its elements are packed row- or column-major (a transpose is read as it is),
    else a contiguous copy. oneDNN runs a product with any other strides (a column slice of a wider matrix) in its
    reference kernel: 5.0 s instead of 2.5 ms for [600 x 1536] x [1536 x 256] on one AVX-512 core."""
    if m.is_contiguous():
        return m
    # column-major, read from the strides without making the .t() view (this runs for every product); a single
    # column is contiguous already
    transposed = m.stride() == (1, m.shape[0])
    return m if transposed else m.contiguous()


def _onednn_nt(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b.T (+ bias)`` for 2-D fp32 CPU tensors, by oneDNN (operands made :func:`dense` first)."""
    return torch.ops.mkldnn._linear_pointwise(dense(a), dense(b), bias, "none", [], "")


def _wanted(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`linear` of these tensors goes through oneDNN (module doc)."""
    return (
        ONEDNN_PRODUCTS
        and torch.is_grad_enabled()
        and (x.requires_grad or weight.requires_grad)
        and x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and x.layout == weight.layout == torch.strided
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and x.numel() * weight.shape[0] >= MIN_MULTIPLY_ADDS
    )


class _OneDnnLinear(torch.autograd.Function):
    """``F.linear`` of a 2-D input whose three products (forward, input and weight gradients) are oneDNN's."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        x, weight = dense(x), dense(weight)  # once, for the backward's products too
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn_nt(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad_x = _onednn_nt(grad, weight.t()) if ctx.needs_input_grad[0] else None  # grad @ W
        grad_w = None
        if ctx.needs_input_grad[1]:  # grad.T @ x; oneDNN copies its first operand to rows: copy the smaller one
            grad_w = _onednn_nt(grad.t(), x.t()) if grad.shape[1] <= x.shape[1] else _onednn_nt(x.t(), grad.t()).t()
        grad_b = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` (``x`` of any leading shape); in training on the CPU, by oneDNN (module doc)."""
    if not _wanted(x, weight):
        return F.linear(x, weight, bias)
    rows = x.reshape(-1, x.shape[-1])
    return _OneDnnLinear.apply(rows, weight, bias).view(*x.shape[:-1], weight.shape[0])


class Linear(nn.Linear):
    """``nn.Linear`` whose training products on the CPU are oneDNN's (:func:`linear`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
