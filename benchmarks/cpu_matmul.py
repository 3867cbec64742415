"""The products of an MNIST-Split training step, forward + both gradients: the library's ``F.linear`` (MKL's sgemm on
the CPU) against :func:`models.networks.cpu_matmul.linear` (oneDNN), with the CPU's vector instructions named.
The oneDNN column is timed whatever this CPU's choice (``ONEDNN_PRODUCTS``, printed and saved with the results).

Each row is one product of a VAEVAE / SVAE step on the paper's code's networks (batch 200: a step's paired +
unpaired samples of one modality; the joint network's layer sees the 100 paired ones).

    python3 benchmarks/cpu_matmul.py [--threads 1] [--repeats 30]

``ONEDNN_MAX_CPU_ISA=AVX2 python3 benchmarks/cpu_matmul.py --result-suffix=-avx2`` limits oneDNN to AVX2, as on a
core without AVX-512 (where MKL's code is AVX2 too). Writes ``benchmarks/results/cpu_matmul<suffix>.json``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import kernel_timing_args, median_of, save  # noqa: E402

from models.networks import cpu_matmul  # noqa: E402
from models.networks.cpu_matmul import cpu_vendor, linear  # noqa: E402

#: name, rows, in features, out features
PRODUCTS = [
    ("conv 1->64 (patches x weight)", 200 * 7 * 14, 16, 64),
    ("conv 128->256 (patches x weight)", 200 * 3, 128 * 3 * 4, 256),
    ("encoder FC 768->512", 200, 768, 512),
    ("joint FC 1536->512", 100, 1536, 512),
    ("latent head 512->64", 200, 512, 64),
    ("decoder FC 64->512", 200, 64, 512),
    ("decoder FC 512->112", 200, 512, 112),
    ("upconv 112->56x3x5 (1x1 input)", 200, 112, 56 * 3 * 5),
]


def time_product(fn, x: torch.Tensor, w: torch.Tensor, grad: torch.Tensor, repeats: int) -> float:
    """Median milliseconds of forward + backward (input and weight gradients)."""
    return 1000 * median_of(lambda: torch.autograd.grad(fn(x, w), (x, w), grad), repeats)


def main() -> None:
    args = kernel_timing_args(__doc__.split("\n")[0])

    capability = torch.backends.cpu.get_cpu_capability()
    onednn_isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "the core's widest")
    chosen, vendor = cpu_matmul.ONEDNN_PRODUCTS, cpu_vendor()
    print(f"torch's CPU capability {capability}; oneDNN limited to: {onednn_isa}; CPU vendor {vendor!r}, "
          f"training's products by {'oneDNN' if chosen else 'the library'} here")  # fmt: skip
    cpu_matmul.ONEDNN_PRODUCTS = True  # time the oneDNN column whatever the choice
    rows = []
    for name, m, k, n in PRODUCTS:
        torch.manual_seed(0)
        x = torch.randn(m, k, requires_grad=True)
        w = (torch.randn(n, k) / k**0.5).requires_grad_()
        grad = torch.randn(m, n)
        with torch.no_grad():
            diff = float((F.linear(x, w) - linear(x, w)).abs().max())
        lib_ms = time_product(F.linear, x, w, grad, args.repeats)
        dnn_ms = time_product(linear, x, w, grad, args.repeats)
        gflop = 3 * 2 * m * k * n / 1e9  # forward, input gradient, weight gradient
        rows.append({"product": name, "shape": [m, k, n], "library_ms": round(lib_ms, 3),
                     "onednn_ms": round(dnn_ms, 3), "speedup": round(lib_ms / dnn_ms, 2),
                     "library_gflops": round(gflop / lib_ms * 1e3, 1), "onednn_gflops": round(gflop / dnn_ms * 1e3, 1),
                     "max_abs_difference": diff})  # fmt: skip
        row = rows[-1]
        print(f"{name:34s} library {lib_ms:7.3f} ms ({row['library_gflops']:5.0f} GFLOP/s)  oneDNN {dnn_ms:7.3f} ms "
              f"({row['onednn_gflops']:5.0f} GFLOP/s)  x{row['speedup']:.2f}  diff {diff:.1e}")  # fmt: skip
    total_lib = sum(r["library_ms"] for r in rows)
    total_dnn = sum(r["onednn_ms"] for r in rows)
    print(f"all products: library {total_lib:.2f} ms, oneDNN {total_dnn:.2f} ms (x{total_lib / total_dnn:.2f})")
    save(
        f"cpu_matmul{args.result_suffix}",
        {"threads": args.threads, "repeats": args.repeats,  # the machine's cpu_capability is in "machine"
         "onednn_max_cpu_isa": onednn_isa, "cpu_vendor": vendor, "onednn_chosen_here": chosen, "results": rows,
         "total_library_ms": round(total_lib, 2), "total_onednn_ms": round(total_dnn, 2)},
    )  # fmt: skip


if __name__ == "__main__":
    main()
