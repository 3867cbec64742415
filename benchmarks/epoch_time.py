"""Seconds per training epoch of each model on MNIST-Split and MNIST-Split-3 (the trainer's real steps on real
MNIST strips), and seconds per oracle evaluation of 1,000 images; extrapolated to the full 60,000-image epoch.

A full epoch at supervision s has ``ceil(max(n_paired, n_unpaired_per_modality) / 100)`` steps (batch 100): 600
at s = 1 (paired batches only), and for s < 1 each step also draws one unpaired batch per modality. So the step
time is measured at s = 1 and at s = 0.1 on ``--n`` training images, timing the second of two epochs.

    python3 benchmarks/epoch_time.py [--n 2000] [--models svae vaevae vaevae-star mmvae] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._machine import add_data_argument, save  # noqa: E402
from models import build_model  # noqa: E402
from models.networks import experiment_defaults  # noqa: E402
from training.data.mnist import evaluation_sets, load_mnist, split_rows  # noqa: E402
from training.data.semi import make_semi_supervised  # noqa: E402
from training.experiments.common import first_rows  # noqa: E402
from training.experiments.mnist_split import DEFAULT_ORACLE, split_score  # noqa: E402
from training.oracles import load_mnist_oracle  # noqa: E402
from training.trainer import seed_everything, steps_per_epoch, train  # noqa: E402

N_FULL = 60000


def step_seconds(model_name: str, experiment: str, x_train: torch.Tensor, n_parts: int, supervision: float) -> float:
    """Seconds per optimisation step: the second of two epochs on ``x_train`` divided by its steps."""
    defaults = experiment_defaults(experiment)
    data = make_semi_supervised(split_rows(x_train, n_parts), supervision, seed=0)
    seed_everything(0)
    model = build_model(model_name, experiment)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(model, data, epochs=2, batch_size=defaults["batch_size"], lr=defaults["lr"], out_dir=tmp,
                       device="cpu", progress=False)  # fmt: skip
    last = result.history[-1]
    return last["time_s"] / last["steps"]


def full_steps(model_name: str, experiment: str, n_parts: int, supervision: float) -> int:
    """Steps of one epoch on all 60,000 training images (counts only, no data)."""
    data = make_semi_supervised(split_rows(torch.zeros(N_FULL, 1, 28, 1), n_parts), supervision, seed=0)
    use_unpaired = build_model(model_name, experiment).uses_unpaired
    return steps_per_epoch(data, experiment_defaults(experiment)["batch_size"], use_unpaired)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_argument(parser)
    parser.add_argument("--n", type=int, default=2000, help="training images timed per setting")
    parser.add_argument("--models", nargs="+", default=["svae", "vaevae", "vaevae-star", "mmvae"])
    parser.add_argument("--experiments", nargs="+", default=["mnist-split", "mnist-split-3"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mnist = load_mnist(args.data)
    x_train = mnist.x_train[: args.n]

    rows = []
    for experiment in args.experiments:
        n_parts = 2 if experiment == "mnist-split" else 3
        for model_name in args.models:
            row = {"experiment": experiment, "model": model_name}
            for s in (1.0, 0.1):
                per_step = step_seconds(model_name, experiment, x_train, n_parts, s)
                steps = full_steps(model_name, experiment, n_parts, s)
                row[f"step_s_sup{s:g}"] = round(per_step, 4)
                row[f"epoch_s_sup{s:g}_60k"] = round(per_step * steps, 1)
                row[f"steps_sup{s:g}_60k"] = steps
            rows.append(row)
            print(row, flush=True)

    # the oracle evaluation of one epoch: reconstruct from all parts and from each part, classify
    evals = []
    if DEFAULT_ORACLE.exists():
        oracle = load_mnist_oracle(DEFAULT_ORACLE)
        for experiment in args.experiments:
            n_parts = 2 if experiment == "mnist-split" else 3
            valid = first_rows(evaluation_sets(mnist.x_test, mnist.y_test, n_parts).valid, 1000)
            seed_everything(0)
            model = build_model("svae", experiment).eval()
            t0 = time.perf_counter()
            split_score(oracle)(model, valid)
            seconds = time.perf_counter() - t0
            evals.append({"experiment": experiment, "eval_s_per_1000_images": round(seconds, 2),
                          "reconstructions_per_image": n_parts + 1,
                          "eval_s_valid_5000": round(5 * seconds, 1)})  # fmt: skip
            print(evals[-1], flush=True)

    note = "CPU shared with other jobs: figures are upper bounds"
    figures = {"device": "cpu", "threads": args.threads, "n_timed": args.n, "epochs": rows, "evaluation": evals}
    save("epoch_time", {**figures, "note": note})
    print(f"full-data epochs: {math.fsum(r['epoch_s_sup1_60k'] for r in rows):.0f} s for all rows at supervision 1")


if __name__ == "__main__":
    main()
