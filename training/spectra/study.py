"""Issue 12's spectra study: the paper's featurization, a learnable fingerprint, the baselines on identical
inputs, and the semi-supervised VAEs, one run per call (CPU budgets allow no grid in one go).

    python -m training.spectra.study fingerprints --epochs 8          # choose the fingerprint (validation)
    python -m training.spectra.study library --levels 1 0.5 0.1       # library-search baseline rows
    python -m training.spectra.study train --model mlp --level 0.1 --seed 0
    python -m training.spectra.study train --model svae --level 0.1 --library-molecules 100000
    python -m training.spectra.study train --model svae --network paper --lr 1e-4 --device cuda --tf32 \
        --time-limit 6 --no-last-checkpoint     # the paper's networks on a GPU (gpu_study.sh runs a set of them)

Every run uses :data:`BINNING` (1 Da bins, log(1 + relative intensity on a 0-100 scale): the paper's transform at
the bin width a 2-core CPU can train) and the fingerprint bits firing in :data:`BIT_RATES` of the training
structures. A run writes ``<runs>/<model>[-<tag>]-s<level>-seed<seed>/result.json`` (see
:mod:`training.spectra.experiment`); one whose result exists is skipped. ``python -m training.spectra.report
--study <runs>`` turns the results into ``reports/spectra.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from models.featurize.binning import LOG1P_RELATIVE_MAX, BinningSpec
from models.networks.spectra import SPECTRUM_HIDDEN
from training.spectra.experiment import RESULT_FILE, library_search_run, load_data, train_one

BINNING = BinningSpec(bin_width=1.0, intensity="log1p-relative")
BIT_RATES = (0.005, 0.995)
FINGERPRINT = "maccs"  # chosen by validation retrieval of the MLP (fingerprint_study; reports/spectra.md)
FINGERPRINT_CANDIDATES = (
    "maccs",
    "morgan2-2048",
    "morgan2-2048+maccs",
    "pattern-2048+maccs",
    "layered-2048+maccs",
    "morgan2-2048+pattern-2048+maccs",
)
MAX_VALID = 2000
RUNS = "runs/spectra12"
# network of the study's VAEs: what 2 shared CPU cores train in ~20 min per run (a step of 256 paired + 256 + 256
# unpaired samples took 0.66 s at load ~19; 512-256 spectrum layers twice that)
VAE_NETWORK: dict[str, Any] = {
    "latent_dim": 64,
    "spectrum_hidden": (256, 128),
    "fingerprint_hidden": (128, 128),
    "spectrum_mean_bound": LOG1P_RELATIVE_MAX,
}
MLP_NETWORK: dict[str, Any] = {"spectrum_hidden": (512, 256)}
# ``--network paper``: the paper's spectrum and fingerprint networks (Tables A.8/A.9, models/networks/spectra.py) and
# latent 300, on the study's bins; the MLP gets the paper's spectrum encoder body. A GPU job (SVAE: 226 M parameters).
PAPER_VAE_NETWORK: dict[str, Any] = {"latent_dim": 300, "spectrum_mean_bound": LOG1P_RELATIVE_MAX}
PAPER_MLP_NETWORK: dict[str, Any] = {"spectrum_hidden": SPECTRUM_HIDDEN}


def run_name(model: str, level: float, seed: int, tag: str = "") -> str:
    """``<model>[-<tag>]-s<level>-seed<seed>``."""
    return f"{model}{'-' + tag if tag else ''}-s{level:g}-seed{seed}"


def run_network(model: str, network: str, sets: Sequence[str] = ()) -> tuple[str, dict[str, Any]]:
    """:func:`train_one`'s ``size`` and network overrides for a study run of ``model`` with ``--network`` ``network``
    (``study`` or ``paper``) and ``--set`` items ``KEY=JSON`` on top."""
    if network not in ("study", "paper"):
        raise ValueError(f"network must be 'study' or 'paper', not {network!r}")
    paper = network == "paper"
    if model == "mlp":
        overrides = {**(PAPER_MLP_NETWORK if paper else MLP_NETWORK)}
    else:
        overrides = {**(PAPER_VAE_NETWORK if paper else VAE_NETWORK)}
    overrides.update({k: json.loads(v) for k, v in (item.split("=", 1) for item in sets)})
    return ("paper" if paper else "small"), overrides


def fingerprint_study(
    data_dir: str, out: Path, specs: tuple[str, ...], epochs: int, command: str
) -> list[dict[str, Any]]:
    """Train the MLP (supervision 1, seed 0) on each fingerprint (bits selected by :data:`BIT_RATES`); returns and
    writes (``out/fingerprints.json``) each one's validation retrieval at its best epoch."""
    data = load_data(data_dir, BINNING, FINGERPRINT, None)
    rows = []
    for spec in specs:
        chosen = data.with_fingerprint(spec).select_bits(*BIT_RATES)
        record = train_one(
            "mlp", 1.0, epochs, data_dir, out / f"fingerprint-{spec}", data=chosen, max_valid=MAX_VALID,
            max_test=500, mix=False, progress=False, bit_rates=BIT_RATES, command=command, **MLP_NETWORK,
        )  # fmt: skip
        rows.append({"fingerprint": spec, "kept_bits": chosen.fingerprint_spec.n_bits,
                     "all_bits": chosen.fingerprint_spec.full_bits, "best_epoch": record["best_epoch"],
                     "valid": record["valid_metrics"]})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    (out / "fingerprints.json").write_text(json.dumps({"command": command, "epochs": epochs, "rows": rows}, indent=1))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="issue 12 spectra study runs")
    parser.add_argument("what", choices=("fingerprints", "library", "train"))
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--runs", default=RUNS)
    parser.add_argument("--fingerprint", default=FINGERPRINT)
    parser.add_argument("--specs", nargs="+", default=list(FINGERPRINT_CANDIDATES))
    parser.add_argument("--model", default="svae")
    parser.add_argument("--levels", nargs="+", type=float, default=[1.0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--library-molecules", type=int, default=0)
    parser.add_argument("--tag", default="", help="run-name suffix for a variant")
    parser.add_argument("--set", nargs="*", default=[], help="network overrides KEY=JSON (e.g. latent_dim=128)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (the GPU when there is one)")
    parser.add_argument(
        "--network",
        choices=("study", "paper"),
        default="study",
        help="the study's small networks, or the paper's (Tables A.8/A.9, latent 300)",
    )
    parser.add_argument("--time-limit", type=float, default=None, help="minutes of training per run, at most")
    parser.add_argument(
        "--no-last-checkpoint",
        action="store_true",
        help="do not write last.pt every epoch (no resume; saves gigabytes per epoch on large nets)",
    )
    parser.add_argument("--tf32", action="store_true", help="TF32 matrix products on a GPU (recorded in the result)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.tf32:
        torch.set_float32_matmul_precision("high")
    command = "python -m training.spectra.study " + shlex.join(sys.argv[1:] if argv is None else argv)
    runs = Path(args.runs)
    if args.what == "fingerprints":
        fingerprint_study(args.data, runs, tuple(args.specs), args.epochs, command)
        return
    data = load_data(args.data, BINNING, args.fingerprint, BIT_RATES)
    for level in args.levels:
        for seed in args.seeds:
            model = "library-search" if args.what == "library" else args.model
            out = runs / run_name(model, level, seed, args.tag)
            if (out / RESULT_FILE).is_file():
                print(f"{out}: done already")
                continue
            if args.what == "library":
                record = library_search_run(level, data, out, seed, command=command)
            else:
                size, network = run_network(model, args.network, args.set)
                record = train_one(
                    model, level, args.epochs, args.data, out, args.device, seed, data=data, lr=args.lr,
                    max_valid=MAX_VALID, patience=args.patience, library_molecules=args.library_molecules,
                    time_limit_s=None if args.time_limit is None else 60 * args.time_limit, size=size,
                    save_last=not args.no_last_checkpoint,
                    bit_rates=BIT_RATES, binning=BINNING, fingerprint_spec=args.fingerprint, command=command,
                    progress=False, **network,
                )  # fmt: skip
            m = record["metrics"]
            print(f"{out}: nearest256 top1 {m['nearest256_top1_rate']:.4f} top10 {m['nearest256_top10_rate']:.4f}")


if __name__ == "__main__":
    main()
