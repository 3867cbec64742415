"""The arithmetic floor of a training step, and so the largest speedup over the paper's code this core allows.

Counts the floating-point operations of the matrix products and convolutions of one MNIST-Split step of each model
(forward and backward; the paper's code's networks; the batch of ``train_step.py``) with
``torch.utils.flop_counter``, and times this core's fastest fp32 matrix product on one thread (MKL and oneDNN, square
products). FLOPs over that rate is the shortest step any fp32 implementation of the same networks and objective can
take here, before a single elementwise operation, allocation or line of Python. Given a result of ``train_step.py
--paper-code ...`` from the same machine, it prints each model's ceiling (the code's step over that floor) beside the
speedup measured, and the share of our step spent at the floor.

    python3 benchmarks/step_flops.py [--data DIR] [--speedups benchmarks/results/train_step_vs_paper_code-X.json]

Writes ``benchmarks/results/step_flops<suffix>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import add_data_argument, best_of, save  # noqa: E402
from train_step import PAPER_CODE_CLASSES, halves_and_sampler, step_batch  # noqa: E402

from models import build_model  # noqa: E402
from models.networks import cpu_matmul  # noqa: E402

#: Side of the square products that measure the core's peak rate (large enough for either library to reach it).
PEAK_SIZE = 2048


def step_flops(name: str, data: Path) -> dict[str, float]:
    """FLOPs of one training step of model ``name`` (forward + backward of the loss), in total and by operator."""
    # oneDNN's product op is not one the counter knows; the library's F.linear (aten.addmm / mm) computes the
    # same products and is counted.
    cpu_matmul.ONEDNN_PRODUCTS = False
    top, bottom, draw = halves_and_sampler(data, "cpu")
    model = build_model(name, "mnist-split", paper_code_nets=True)
    # one step first: the kernel choices timed at first use (winograd_conv.beats_library) are not the step's work
    model.loss(step_batch(top, bottom, draw())).total.backward()
    with FlopCounterMode(display=False) as counter:
        model.loss(step_batch(top, bottom, draw())).total.backward()
    by_op = {str(op): count for op, count in counter.get_flop_counts()["Global"].items()}
    return {"total": counter.get_total_flops(), **by_op}


def peak_flops_per_second(repeats: int) -> dict[str, float]:
    """The fastest fp32 rate of a PEAK_SIZE-square product on this thread, by MKL (``torch.mm``) and by oneDNN."""
    a, b = torch.randn(PEAK_SIZE, PEAK_SIZE), torch.randn(PEAK_SIZE, PEAK_SIZE)
    flops = 2 * PEAK_SIZE**3
    return {
        "mkl": flops / best_of(lambda: torch.mm(a, b), repeats),
        "onednn": flops / best_of(lambda: torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], ""), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(parser)
    parser.add_argument("--models", nargs="+", default=list(PAPER_CODE_CLASSES), help="registry names")
    parser.add_argument("--speedups", type=Path, default=None, help="a train_step.py --paper-code result, this machine")
    parser.add_argument("--repeats", type=int, default=10, help="timed products for the peak rate (the fastest counts)")
    parser.add_argument("--result-suffix", default="", help="added to the result file's name")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the side-by-side steps run on one thread

    peak = peak_flops_per_second(args.repeats)
    best = max(peak.values())
    print(f"peak fp32 product rate, 1 thread: MKL {peak['mkl'] / 1e9:.1f}, oneDNN {peak['onednn'] / 1e9:.1f} GFLOP/s")
    measured = {}
    if args.speedups is not None:
        measured = {row["model"]: row for row in json.loads(args.speedups.read_text())["results"]}
    rows = []
    for name in args.models:
        flops = step_flops(name, args.data)
        floor = flops["total"] / best
        row = {"model": name, "gflop_per_step": round(flops["total"] / 1e9, 3),
               "gflop_by_operator": {k: round(v / 1e9, 3) for k, v in flops.items() if k != "total"},
               "floor_seconds_per_step": round(floor, 5)}  # fmt: skip
        line = f"{name:12s} {flops['total'] / 1e9:6.2f} GFLOP  floor {floor * 1000:6.1f} ms"
        if name in measured:
            m = measured[name]
            ours = statistics.median(m["ours_seconds_per_step"])
            code = statistics.median(m["paper_code_seconds_per_step"])
            row |= {"ours_seconds_per_step": ours, "paper_code_seconds_per_step": code,
                    "speedup_measured": m["speedup_of_medians"], "speedup_ceiling": round(code / floor, 2),
                    "share_of_our_step_at_the_floor": round(floor / ours, 3)}  # fmt: skip
            line += (
                f"  ours {ours * 1000:6.1f} ms ({row['share_of_our_step_at_the_floor']:.0%} at the floor)"
                f"  code {code * 1000:6.1f} ms  speedup x{m['speedup_of_medians']:.2f} of at most x{code / floor:.2f}"
            )
        rows.append(row)
        print(line)
    save(f"step_flops{args.result_suffix}", {
        "step": "100 paired + 100 unpaired top + 100 unpaired bottom MNIST-Split samples, forward + backward",
        "networks": "poe-vaes code (paper_code_nets=True)", "threads": 1,
        "peak_gflop_per_second": {k: round(v / 1e9, 1) for k, v in peak.items()}, "peak_product_size": PEAK_SIZE,
        "speedups_from": str(args.speedups) if args.speedups else None, "results": rows})  # fmt: skip


if __name__ == "__main__":
    main()
