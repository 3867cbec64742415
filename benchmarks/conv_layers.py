"""Forward + backward time of each MNIST-Split convolution layer: the library's kernel against the same layer as
a matrix product (``models/networks/matmul_conv.py``), on the CPU.

Each row times one layer on a batch of 200 (a step's paired + unpaired samples of one modality), with the
gradients a training step needs: the weights always, the input except for the first layer (it reads the data).
Inputs come in the layout the networks give them: channels-last for every layer after the first; output
gradients channels-last, as the next layer's backward gives them. The 64 -> 128 layer is also timed as one
Winograd tile (``models/networks/winograd_conv.py``), which ``MatmulConv2d`` uses only where it beats the library
on the machine: the row says which one it chose.

    python3 benchmarks/conv_layers.py [--threads 1] [--repeats 30]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import kernel_timing_args, median_of, save  # noqa: E402

from models.networks import winograd_conv  # noqa: E402
from models.networks.matmul_conv import MAX_GATHERED_POSITIONS, MatmulConv2d, MatmulConvTranspose2d  # noqa: E402
from training.cpu_heap import keep_freed_memory  # noqa: E402

BATCH = 200
#: name, library layer, matmul layer, input shape (without the batch), whether the input needs a gradient
LAYERS = [
    ("conv 1->64, 14x28 -> 7x14", lambda c: c(1, 64, 4, 2, 1, bias=False), (1, 14, 28), False),
    ("conv 64->128, 7x14 -> 3x7", lambda c: c(64, 128, 4, 2, 1, bias=False), (64, 7, 14), True),
    ("conv 128->256, 3x7 -> 1x3", lambda c: c(128, 256, 4, 2, 1, bias=False), (128, 3, 7), True),
    ("upconv 112->56, 1x1 -> 3x5", lambda c: c(112, 56, (3, 5), stride=2), (112, 1, 1), True),
    ("upconv 56->28, 3x5 -> 7x13", lambda c: c(56, 28, (3, 5), stride=2), (56, 3, 5), True),
    ("upconv 28->1, 7x13 -> 14x28", lambda c: c(28, 1, (2, 4), stride=2), (28, 7, 13), True),
]


def time_layer(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor, repeats: int) -> float:
    """Median milliseconds of forward + backward."""
    return 1000 * median_of(lambda: layer(x).backward(grad), repeats)


def time_tile(layer: nn.Conv2d, x: torch.Tensor, grad: torch.Tensor, repeats: int) -> float:
    """Median milliseconds of forward + backward of the layer as one Winograd tile."""
    return 1000 * median_of(
        lambda: winograd_conv.winograd_conv2d(x, layer.weight, layer.padding).backward(grad), repeats
    )


def main() -> None:
    args = kernel_timing_args(__doc__.split("\n")[0])
    keep_freed_memory()  # as the trainer does on the CPU

    rows = []
    for name, make, shape, input_grad in LAYERS:
        torch.manual_seed(0)
        transposed = name.startswith("upconv")
        library = make(nn.ConvTranspose2d if transposed else nn.Conv2d)
        matmul = make(MatmulConvTranspose2d if transposed else MatmulConv2d)
        matmul.load_state_dict(library.state_dict())
        x = torch.rand(BATCH, *shape)
        if input_grad:  # every layer after the first reads a channels-last output (matmul_conv.py)
            x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
        with torch.no_grad():  # the output's gradient channels-last, as the next layer's backward gives it in a step
            grad = torch.randn_like(library(x)).contiguous(memory_format=torch.channels_last)
            diff = float((library(x) - matmul(x)).abs().max())
        lib_ms, mat_ms = time_layer(library, x, grad, args.repeats), time_layer(matmul, x, grad, args.repeats)
        rows.append({"layer": name, "library_ms": round(lib_ms, 2), "matmul_ms": round(mat_ms, 2),
                     "speedup": round(lib_ms / mat_ms, 2), "max_abs_difference": diff})  # fmt: skip
        print(f"{name:30s} library {lib_ms:7.2f} ms  matmul {mat_ms:7.2f} ms  x{lib_ms / mat_ms:.2f}  diff {diff:.1e}")
        out = tuple(grad.shape[-2:])
        if (
            input_grad
            and out[0] * out[1] > MAX_GATHERED_POSITIONS
            and winograd_conv.applies(library.kernel_size, library.stride, out)
        ):
            tile_ms = time_tile(matmul, x, grad, args.repeats)
            chosen = winograd_conv.beats_library(x, matmul.weight, matmul.padding)
            rows[-1].update(winograd_tile_ms=round(tile_ms, 2), matmul_uses_the_tile=chosen)
            print(f"{'  as one Winograd tile':30s} {'':16s}  tile   {tile_ms:7.2f} ms  x{lib_ms / tile_ms:.2f}  "
                  f"{'chosen' if chosen else 'not chosen: not faster than the library'}")  # fmt: skip
    result = {"batch": BATCH, "threads": args.threads, "repeats": args.repeats, "results": rows}
    save(f"conv_layers{args.result_suffix}", result)


if __name__ == "__main__":
    main()
