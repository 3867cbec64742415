"""Where a training step's time goes, operator by operator.

Runs MNIST-Split training steps of one model (the paper's code's networks, the batch of ``train_step.py``, fused
Adam, one thread) under a ``TorchDispatchMode`` that times every ATen operator the step calls (forward, backward
and the optimiser), and sums the times by phase and operator, and by phase, operator, input shapes and, in the
forward pass, the line of ``models/`` that called it. The sum is the time inside the operators; the mode's own
Python around each call is left out, so a step under the mode takes longer than the step without it, which is
timed first. ``--samples 2`` shows the part of a step that does not grow with the batch (Adam, weight-sized copies,
Python and dispatch).

    python3 benchmarks/step_ops.py [--model vaevae] [--samples 100] [--steps 10] [--top 40] [--data DIR]

Writes ``benchmarks/results/step_ops<suffix>.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import add_data_argument, save  # noqa: E402
from train_step import halves_and_sampler, step_batch, step_seconds  # noqa: E402

from models import build_model  # noqa: E402
from training.cpu_heap import keep_freed_memory  # noqa: E402
from training.trainer import adam  # noqa: E402

MODELS_DIR = str(ROOT / "models")


def _shapes(args: tuple) -> str:
    """Input tensors' shapes; CL marks a 4-d channels-last tensor, T a transposed matrix."""
    out = []
    for a in args:
        if not isinstance(a, torch.Tensor):
            continue
        mark = ""
        if a.dim() == 4 and not a.is_contiguous() and a.is_contiguous(memory_format=torch.channels_last):
            mark = "CL"
        elif a.dim() == 2 and a.shape[1] > 1 and a.stride(0) == 1:
            mark = "T"
        out.append(f"{tuple(a.shape)}{mark}")
    return " x ".join(out)


def _caller() -> str:
    """The innermost line of models/ on the Python stack (the forward pass's call site)."""
    for frame in reversed(traceback.extract_stack(limit=30)):
        if frame.filename.startswith(MODELS_DIR):
            return f"{os.path.relpath(frame.filename, ROOT)}:{frame.lineno}"
    return ""


class OperatorTimes(TorchDispatchMode):
    """Seconds and calls of every ATen operator, keyed by (phase, operator, shapes, caller)."""

    def __init__(self) -> None:
        super().__init__()
        self.phase = "forward"
        self.times: dict[tuple[str, str, str, str], list[float]] = defaultdict(lambda: [0, 0.0])

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        start = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        seconds = time.perf_counter() - start
        caller = _caller() if self.phase == "forward" else ""
        entry = self.times[(self.phase, func.overloadpacket.__name__, _shapes(args), caller)]
        entry[0] += 1
        entry[1] += seconds
        return out


def _steps(model_name: str, data: Path, samples: int, mode: OperatorTimes) -> tuple[Callable[[], None], int]:
    """One optimisation step of the model as a function that marks its phases on ``mode`` (which times nothing
    outside its ``with``), and the model's parameter count."""
    top, bottom, draw = halves_and_sampler(data, "cpu", samples)
    keep_freed_memory()  # as the trainer does on the CPU
    model = build_model(model_name, "mnist-split", paper_code_nets=True)
    optimiser = adam(model.parameters(), 2e-4)

    def step() -> None:
        mode.phase = "forward"
        loss = model.loss(step_batch(top, bottom, draw())).total
        optimiser.zero_grad(set_to_none=True)
        mode.phase = "backward"
        loss.backward()
        mode.phase = "optimiser"
        optimiser.step()

    return step, model.num_parameters()


def _rows(times: dict, steps: int, key: Callable[[tuple], tuple]) -> list[dict]:
    """Per-step calls and milliseconds summed over ``key`` of the entries, slowest first."""
    grouped: dict[tuple, list[float]] = defaultdict(lambda: [0, 0.0])
    for k, (calls, seconds) in times.items():
        grouped[key(k)][0] += calls
        grouped[key(k)][1] += seconds
    rows = [
        {"key": list(k), "calls": calls / steps, "ms": round(1000 * seconds / steps, 3)}
        for k, (calls, seconds) in grouped.items()
    ]
    return sorted(rows, key=lambda r: -r["ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(parser)
    parser.add_argument("--model", default="vaevae", help="registry name")
    parser.add_argument("--samples", type=int, default=100, help="paired, unpaired top, unpaired bottom")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after 5 untimed)")
    parser.add_argument("--top", type=int, default=40, help="rows printed by shape and call site")
    parser.add_argument("--result-suffix", default="", help="added to the result file's name")
    args = parser.parse_args()
    torch.set_num_threads(1)

    mode = OperatorTimes()
    step, parameters = _steps(args.model, args.data, args.samples, mode)
    plain = step_seconds(step, args.steps, 5, "cpu")
    with mode:
        for _ in range(args.steps):
            step()
    by_op = _rows(mode.times, args.steps, lambda k: k[:2])
    by_site = _rows(mode.times, args.steps, lambda k: k)
    inside = sum(r["ms"] for r in by_op)
    calls = sum(r["calls"] for r in by_op)
    step_ms = 1000 * statistics.median(plain)
    print(f"{args.model}, {args.samples} samples per part: step {step_ms:.1f} ms (median of {args.steps}, no mode); "
          f"inside operators {inside:.1f} ms, {calls:.0f} calls per step")  # fmt: skip
    for r in by_op[:20]:
        print(f"  {r['key'][0]:9s} {r['key'][1]:32s} {r['calls']:6.1f} calls {r['ms']:8.2f} ms")
    print("by input shapes and call site:")
    for r in by_site[: args.top]:
        phase, op, shapes, caller = r["key"]
        print(f"  {phase:9s} {op:24s} {shapes:62s} {caller:30s} {r['calls']:5.1f} calls {r['ms']:7.2f} ms")
    save(f"step_ops{args.result_suffix}", {
        "model": args.model, "samples_per_part": args.samples, "parameters": parameters, "threads": 1,
        "networks": "poe-vaes code (paper_code_nets=True)", "steps": args.steps,
        "step_ms_median_without_mode": round(step_ms, 2), "ms_inside_operators": round(inside, 2),
        "calls_per_step": calls, "by_operator": by_op,
        "by_shape_and_caller": by_site[: max(args.top, 100)]})  # fmt: skip


if __name__ == "__main__":
    main()
