"""What every benchmark result records: the command that made it and the machine it ran on."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def cpu() -> dict[str, str]:
    """Vendor, family, model and name of the CPU: machines with the same name ("AMD EPYC") and vector instructions
    can still differ in generation (family 25 model 1 is Zen 3, model 17 Zen 4)."""
    from models.networks.cpu_matmul import cpu_info

    info = cpu_info()
    names = {"vendor_id": "vendor", "cpu family": "family", "model": "model", "model name": "name"}
    return {short: info[field] for field, short in names.items() if field in info}


def machine() -> dict[str, Any]:
    """Platform, CPU count and the versions that matter for the timings."""
    import numpy
    import torch
    from rdkit import rdBase

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu(),
        "cpu_count": os.cpu_count(),
        # other work on the machine while the figures were taken (1, 5, 15 min); timings on a loaded machine are slow
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        # the candidate import and SMILES featurization run at RDKit's speed, which changes between its versions
        "rdkit": rdBase.rdkitVersion,
        # the vector instructions torch's kernels use here (AVX2, AVX512, ...): CPU timings depend on them
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """``--data``: the shared data folder (``MSVAE_SHARED_DATA``, else ``../shared/data`` beside the repository)."""
    default = os.environ.get("MSVAE_SHARED_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument(
        "--data", type=Path, default=Path(default), help="the shared data folder (mnist/, massbank/, molecules/)"
    )


def kernel_timing_args(description: str) -> argparse.Namespace:
    """The command line of a benchmark that times kernels on the CPU (``--threads``, ``--repeats``,
    ``--result-suffix``), with torch set to that many threads."""
    import torch

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--result-suffix", default="", help="added to the result file's name")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def save(name: str, figures: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` with the figures, the command line, the machine and the date."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    doc = {
        "command": "python3 " + " ".join(shlex.quote(a) for a in sys.argv),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        **figures,
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path}")
    return path


def _timings(fn, repeats: int) -> list[float]:
    """Seconds of ``repeats`` timed calls of ``fn``, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def best_of(fn, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls (seconds), after one warm-up call; the least disturbed by other load."""
    return min(_timings(fn, repeats))


def median_of(fn, repeats: int) -> float:
    """The median of ``repeats`` timed calls (seconds), after one warm-up call: on a shared machine the typical
    time, where ``best_of`` gives the least disturbed one."""
    return float(statistics.median(_timings(fn, repeats)))
