"""Samples per second and peak memory of one optimisation step of every model on the MNIST-Split networks, and
the same step of the paper's code beside ours.

A step is the paper's: a batch of 100 paired samples plus 100 unpaired top halves and 100 unpaired bottom halves
(300 samples), real MNIST images. The script also counts the encoder-network passes per step (each network should
run once per input) so that avoidable work shows. Each model runs in its own process, so the peak resident memory
(CPU) or the peak CUDA allocation belongs to that model alone.

    python3 benchmarks/train_step.py [--data DIR] [--device cpu|cuda] [--steps 20] [--threads 1] [--paper-code-nets]

``--data`` defaults to ``MSVAE_SHARED_DATA``, else ``../shared/data``.

Side by side with the paper's code (a checkout of github.com/sgalkina/poe-vaes, which is not part of this
project, and pixyz 0.1.2, the version it pins, installed apart: ``pip install --target DIR --no-deps
pixyz==0.1.2``)::

    python3 benchmarks/train_step.py --paper-code-nets --paper-code POE_VAES_DIR --pixyz PIXYZ_DIR --rounds 3

times the code's step of the same objective, on the same networks and batches, beside ours: the two alternate
``--rounds`` times, each in a fresh process, and the ratio of the median step times is reported. The code's file
names are swapped with respect to the paper: its ``SVAE_star.py`` computes the paper's SVAE objective (with the
unimodal ELBOs of the paired samples, eq. 19) and its ``SVAE.py`` the paper's SVAE*; see
:data:`PAPER_CODE_CLASSES`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: Our registry name -> (module, class) of the paper's code that computes the same objective with the same networks.
PAPER_CODE_CLASSES = {
    "svae": ("models.SVAE_star", "SVAE_star"),
    "svae-star": ("models.SVAE", "SVAE"),
    "vaevae": ("models.VAEVAE", "VAEVAE"),
    "vaevae-star": ("models.VAEVAE_star", "VAEVAE_star"),
}


def halves_and_sampler(data: Path, device: str, samples: int = 100):
    """The MNIST-Split halves of 3,000 training images, and a function drawing one step's (3, samples) indices:
    paired, unpaired top and unpaired bottom."""
    import numpy as np
    import torch

    torch.manual_seed(0)
    images = np.load(data / "mnist" / "mnist.npz")["x_train"][:3000]
    x = torch.tensor(images, dtype=torch.float32).div(255).unsqueeze(1).to(device)
    return x[:, :, :14], x[:, :, 14:], lambda: torch.randint(0, x.shape[0], (3, samples), device=device)


def step_batch(top, bottom, idx):
    """One step's MultimodalBatch from the indices of ``draw``: paired halves, unpaired tops and bottoms."""
    from models import MultimodalBatch

    return MultimodalBatch(
        paired={"top": top[idx[0]], "bottom": bottom[idx[0]]},
        unpaired={"top": top[idx[1]], "bottom": bottom[idx[2]]},
    )


def step_seconds(step: Callable[[], None], steps: int, warmup: int, device: str) -> list[float]:
    """Seconds of each of ``steps`` calls of ``step``, after ``warmup`` untimed ones."""
    import torch

    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def _timing_row(name: str, times: list[float]) -> dict:
    # the median step: robust to other processes sharing the machine
    seconds = statistics.median(times)
    return {
        "model": name,
        "seconds_per_step_median": round(seconds, 5),
        "seconds_per_step_min": round(min(times), 5),
        "samples_per_second": round(300 / seconds, 1),
    }


def _kernel_choices() -> list[dict]:
    """The layer kernels this process timed at first use (``models.networks.timed_choice``): which choice, for which
    input shape, and whether the candidate won. A close choice may differ between processes: each round says its own."""
    from models.networks import timed_choice

    return [
        {"choice": key[0], "input_shape": list(key[1]), "candidate": chosen}
        for key, chosen in timed_choice.saved_choices()["choices"].items()
    ]


def measure(name: str, data: Path, device: str, steps: int, warmup: int, paper_code_nets: bool, threads: int) -> dict:
    """Time ``steps`` optimisation steps of one model (after ``warmup`` untimed ones) on ``threads`` CPU threads."""
    import torch

    torch.set_num_threads(threads)
    from models import build_model
    from models.encoders import GaussianEncoder, JointEncoder
    from training.cpu_heap import keep_freed_memory
    from training.trainer import adam

    if not device.startswith("cuda"):
        keep_freed_memory()  # as the trainer does on the CPU
    top, bottom, draw = halves_and_sampler(data, device)
    model = build_model(name, "mnist-split", paper_code_nets=paper_code_nets).to(device)
    optimiser = adam(model.parameters(), 2e-4)
    passes = [0]
    for module in model.modules():
        if isinstance(module, GaussianEncoder | JointEncoder):
            module.register_forward_hook(lambda *_: passes.__setitem__(0, passes[0] + 1))

    def step() -> None:
        out = model.loss(step_batch(top, bottom, draw()))
        optimiser.zero_grad(set_to_none=True)
        out.total.backward()
        optimiser.step()

    times = step_seconds(step, steps, warmup, device)
    result = {
        **_timing_row(name, times),
        "parameters": model.num_parameters(),
        "encoder_passes_per_step": passes[0] / (steps + warmup),
        "kernel_choices": _kernel_choices(),
    }
    if device.startswith("cuda"):
        result["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:
        result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def _import_paper_code(code: Path, pixyz: Path) -> types.ModuleType:
    """Put the paper's code and pixyz 0.1.2 on the path; returns its MNIST-Split networks module."""
    import torch

    # The code has its own top-level ``models`` package: this process must not have imported ours (--one-code).
    sys.path[:0] = [str(pixyz), str(code)]
    # The code's network module imports torchvision for its oracle classifier only, which no step uses; a
    # torchvision that does not match this torch fails to import, so that import gets a stand-in then.
    try:
        import torchvision.models.resnet  # noqa: F401
    except Exception:
        stand_ins = {
            name: types.ModuleType(name) for name in ("torchvision", "torchvision.models", "torchvision.models.resnet")
        }
        stand_ins["torchvision.models.resnet"].ResNet = torch.nn.Module
        stand_ins["torchvision.models.resnet"].BasicBlock = None
        sys.modules.update(stand_ins)
    # torch 1.2, which the code pins, did not validate distribution arguments (grey levels in a Bernoulli).
    torch.distributions.Distribution.set_default_validate_args(False)
    return importlib.import_module("experiments.mnist_split.MNIST_split_inference")


def measure_paper_code(name: str, data: Path, steps: int, warmup: int, threads: int, code: Path, pixyz: Path) -> dict:
    """Time the paper's code's optimisation step (pixyz ``Model.train``: zero_grad, loss, backward, Adam) of the
    objective that our model ``name`` computes, with the code's MNIST-Split networks, on the CPU."""
    import torch

    torch.set_num_threads(threads)
    nets = _import_paper_code(code, pixyz)
    module, cls = PAPER_CODE_CLASSES[name]
    model_class = getattr(importlib.import_module(module), cls)
    top, bottom, draw = halves_and_sampler(data, "cpu")
    obj = model_class(nets.z_dim, {"lr": 2e-4}, nets.InferenceX(), nets.InferenceY(), nets.GeneratorX(),
                      nets.GeneratorY(), q=nets.InferenceJoint(), q_star_y=nets.InferenceY_missing(),
                      q_star_x=nets.InferenceX_missing())  # fmt: skip

    def step() -> None:
        idx = draw()
        obj.model.train(obj.model_args(top[idx[0]], bottom[idx[0]], top[idx[1]], bottom[idx[2]]))

    row = _timing_row(name, step_seconds(step, steps, warmup, "cpu"))
    return {**row, "paper_code_class": f"{module}.{cls}"}


def _run_one(args: argparse.Namespace, name: str, flag: str) -> dict:
    """Measure one model in a fresh process (``flag`` is --one for ours, --one-code for the paper's code)."""
    cmd = [sys.executable, __file__, flag, name, "--data", str(args.data), "--device", args.device]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    cmd += ["--paper-code-nets"] if args.paper_code_nets else []
    if flag == "--one-code":
        cmd += ["--paper-code", str(args.paper_code), "--pixyz", str(args.pixyz)]
    stdout = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(stdout.strip().splitlines()[-1])


def _side_by_side(args: argparse.Namespace, names: list[str]) -> list[dict]:
    """Ours and the paper's code, alternating ``args.rounds`` times per model; the ratio of the medians."""
    rows = []
    for name in names:
        ours, code = [], []
        for _ in range(args.rounds):
            ours.append(_run_one(args, name, "--one"))
            code.append(_run_one(args, name, "--one-code"))
        ours_s = statistics.median(r["seconds_per_step_median"] for r in ours)
        code_s = statistics.median(r["seconds_per_step_median"] for r in code)
        # On a shared machine a neighbour's load can slow a whole round by 20-40%; the fastest step of each
        # process is the one least disturbed, so the ratio of those is reported beside the ratio of medians.
        ours_fastest = statistics.median(r["seconds_per_step_min"] for r in ours)
        code_fastest = statistics.median(r["seconds_per_step_min"] for r in code)
        row = {
            "model": name,
            "paper_code_class": code[0]["paper_code_class"],
            "ours_seconds_per_step": [r["seconds_per_step_median"] for r in ours],
            "ours_kernel_choices": [r["kernel_choices"] for r in ours],
            "paper_code_seconds_per_step": [r["seconds_per_step_median"] for r in code],
            "speedup_per_round": [
                round(c["seconds_per_step_median"] / o["seconds_per_step_median"], 2)
                for o, c in zip(ours, code, strict=True)
            ],  # fmt: skip
            "speedup_of_medians": round(code_s / ours_s, 2),
            "ours_fastest_step_seconds": [r["seconds_per_step_min"] for r in ours],
            "paper_code_fastest_step_seconds": [r["seconds_per_step_min"] for r in code],
            "speedup_of_fastest_steps": round(code_fastest / ours_fastest, 2),
        }
        rows.append(row)
        print(
            f"{name:12s} ours {ours_s * 1000:7.1f} ms  paper's code ({row['paper_code_class']}) {code_s * 1000:7.1f} ms"
            f"  x{row['speedup_of_medians']:.2f}  rounds {row['speedup_per_round']}"
            f"  fastest steps x{row['speedup_of_fastest_steps']:.2f}"
        )
    return rows


def main() -> None:
    from _machine import add_data_argument, save

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(parser)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per model process")
    parser.add_argument("--models", nargs="+", default=None, help="registry names (default: all)")
    parser.add_argument("--paper-code-nets", action="store_true", help="the poe-vaes code's networks (ANCHORS.md)")
    parser.add_argument("--paper-code", type=Path, default=None, help="a poe-vaes checkout: time its step beside ours")
    parser.add_argument("--pixyz", type=Path, default=None, help="a folder holding pixyz 0.1.2 (with --paper-code)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of ours and the code's (--paper-code)")
    parser.add_argument("--result-suffix", default="", help="added to the result file's name (repeated runs)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # run one model in this process
    parser.add_argument("--one-code", default=None, help=argparse.SUPPRESS)  # the paper's code, one model
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.data, args.device, args.steps, args.warmup, args.paper_code_nets,
                                 args.threads)))  # fmt: skip
        return
    if args.one_code:
        print(json.dumps(measure_paper_code(args.one_code, args.data, args.steps, args.warmup, args.threads,
                                            args.paper_code, args.pixyz)))  # fmt: skip
        return

    from models import MODEL_NAMES

    if args.paper_code is not None:
        if not args.paper_code_nets or args.device != "cpu" or args.pixyz is None:
            parser.error("--paper-code needs --paper-code-nets, --pixyz and the CPU (the code's own networks)")
        names = args.models or list(PAPER_CODE_CLASSES)
        rows = _side_by_side(args, names)
        save(f"train_step_vs_paper_code{args.result_suffix}", {
            "step": "100 paired + 100 unpaired top + 100 unpaired bottom MNIST-Split samples, Adam lr 2e-4",
            "networks": "poe-vaes code (paper_code_nets=True)", "threads": args.threads, "steps": args.steps,
            "rounds": args.rounds, "results": rows})  # fmt: skip
        return

    rows = []
    for name in args.models or MODEL_NAMES:
        row = _run_one(args, name, "--one")
        rows.append(row)
        print(
            f"{row['model']:12s} {row['parameters']:>10,d} params  {row['samples_per_second']:>8.1f} samples/s  "
            f"{row['encoder_passes_per_step']:.0f} encoder passes/step  "
            f"peak {row.get('peak_rss_mib', row.get('peak_cuda_mib'))} MiB"
        )
    suffix = ("_paper_code_nets" if args.paper_code_nets else "") + ("" if args.device == "cpu" else "_cuda")
    save(
        f"train_step{suffix}{args.result_suffix}",
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
