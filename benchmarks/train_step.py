"""Samples per second and peak memory of one optimisation step of every model on the MNIST-Split networks.

A step is the paper's: a batch of 100 paired samples plus 100 unpaired top halves and 100 unpaired bottom halves
(300 samples), real MNIST images. The script also counts the encoder-network passes per step (each network should
run once per input) so that avoidable work shows. Each model runs in its own process, so the peak resident memory
(CPU) or the peak CUDA allocation belongs to that model alone.

    python3 benchmarks/train_step.py [--data DIR] [--device cpu|cuda] [--steps 20] [--threads 1] [--paper-code-nets]

``--data`` defaults to ``MSVAE_SHARED_DATA``, else ``../shared/data``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def measure(name: str, data: Path, device: str, steps: int, warmup: int, paper_code_nets: bool, threads: int) -> dict:
    """Time ``steps`` optimisation steps of one model (after ``warmup`` untimed ones) on ``threads`` CPU threads."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from models import MultimodalBatch, build_model
    from models.encoders import GaussianEncoder, JointEncoder

    torch.manual_seed(0)
    images = np.load(data / "mnist" / "mnist.npz")["x_train"][:3000]
    x = torch.tensor(images, dtype=torch.float32).div(255).unsqueeze(1).to(device)
    top, bottom = x[:, :, :14], x[:, :, 14:]
    model = build_model(name, "mnist-split", paper_code_nets=paper_code_nets).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-4)
    passes = [0]
    for module in model.modules():
        if isinstance(module, GaussianEncoder | JointEncoder):
            module.register_forward_hook(lambda *_: passes.__setitem__(0, passes[0] + 1))

    def step() -> None:
        idx = torch.randint(0, x.shape[0], (3, 100), device=device)
        batch = MultimodalBatch(
            paired={"top": top[idx[0]], "bottom": bottom[idx[0]]},
            unpaired={"top": top[idx[1]], "bottom": bottom[idx[2]]},
        )
        out = model.loss(batch)
        optimiser.zero_grad(set_to_none=True)
        out.total.backward()
        optimiser.step()

    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    passes[0] = 0
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    # the median step: robust to other processes sharing the machine
    seconds = float(np.median(times))
    result = {
        "model": name,
        "parameters": model.num_parameters(),
        "seconds_per_step_median": round(seconds, 5),
        "seconds_per_step_min": round(min(times), 5),
        "samples_per_second": round(300 / seconds, 1),
        "encoder_passes_per_step": passes[0] / steps,
    }
    if device.startswith("cuda"):
        result["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:
        result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_data = os.environ.get("MSVAE_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default_data), help="the shared data folder (mnist/)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per model process")
    parser.add_argument("--models", nargs="+", default=None, help="registry names (default: all)")
    parser.add_argument("--paper-code-nets", action="store_true", help="the poe-vaes code's networks (ANCHORS.md)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # run one model in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.data, args.device, args.steps, args.warmup, args.paper_code_nets,
                                 args.threads)))  # fmt: skip
        return

    from _machine import save

    from models import MODEL_NAMES

    rows = []
    for name in args.models or MODEL_NAMES:
        cmd = [sys.executable, __file__, "--one", name, "--data", str(args.data), "--device", args.device]
        cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
        cmd += ["--paper-code-nets"] if args.paper_code_nets else []
        stdout = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        row = json.loads(stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{row['model']:12s} {row['parameters']:>10,d} params  {row['samples_per_second']:>8.1f} samples/s  "
            f"{row['encoder_passes_per_step']:.0f} encoder passes/step  "
            f"peak {row.get('peak_rss_mib', row.get('peak_cuda_mib'))} MiB"
        )
    suffix = ("_paper_code_nets" if args.paper_code_nets else "") + ("" if args.device == "cpu" else "_cuda")
    save(
        f"train_step{suffix}",
        {
            "step": "100 paired + 100 unpaired top + 100 unpaired bottom MNIST-Split samples",
            "networks": "poe-vaes code (paper_code_nets=True)" if args.paper_code_nets else "Table A.2",
            "device": args.device,
            "threads": args.threads,
            "steps": args.steps,
            "results": rows,
        },
    )


if __name__ == "__main__":
    main()
