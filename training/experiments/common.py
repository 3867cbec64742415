"""What every image experiment's ``train_one`` shares: build the model under a seed, train it with the validation
metrics chosen each epoch, reload the best checkpoint, score it once on the test set, write ``result.json``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models import build_model
from models.networks import experiment_defaults
from training.checkpoint import load_weights, write_json
from training.data.mnist import EvalSet, EvalSets
from training.data.semi import SemiSupervisedData
from training.trainer import derived_seed, resolve_device, seed_everything, train

Score = Callable[[nn.Module, EvalSet], dict[str, float]]
RESULT_FILE = "result.json"
_TEST_STREAM = 1 << 22  # seed-sequence tag of the final test evaluation


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's parameters."""
    return next(model.parameters()).device


def first_rows(eval_set: EvalSet, n: int | None) -> EvalSet:
    """The first ``n`` rows of an evaluation set (all of them when ``n`` is None)."""
    if n is None or n >= len(eval_set):
        return eval_set
    labels = eval_set.labels[:n] if eval_set.labels is not None else None
    return EvalSet({m: x[:n] for m, x in eval_set.data.items()}, labels)


def require_files(files: Mapping[str, Path], what: str, hint: str) -> None:
    """Raise one FileNotFoundError naming every missing file of ``files`` (label -> path), with ``hint`` on how to
    get them."""
    missing = [f"{label}: {path}" for label, path in files.items() if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"{what}: missing file(s):\n  " + "\n  ".join(missing) + f"\n{hint}")


def warn(message: str) -> None:
    """A line on stderr (the progress channel), so JSON on stdout stays clean."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def run_experiment(
    experiment: str,
    model_name: str,
    supervision: float,
    *,
    data: SemiSupervisedData,
    evals: EvalSets,
    score: Score,
    select_metric: str,
    epochs: int | None,
    out_dir: str | Path,
    device: str | torch.device = "auto",
    seed: int = 0,
    lr: float | None = None,
    batch_size: int | None = None,
    model_overrides: Mapping[str, Any] | None = None,
    info: Mapping[str, Any] | None = None,
    max_valid: int | None = None,
    max_test: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model_name`` on ``data`` (Adam; ``lr``, ``batch_size`` and ``epochs`` default to the paper's, see
    ``models.networks.experiment_defaults``), keep the epoch with the highest ``select_metric`` of
    ``score(model, evals.valid)``, then return ``score(best model, evals.test)`` as ``"metrics"``.

    The returned dict (also ``out_dir/result.json``) holds: experiment, model, supervision, seed, epochs,
    best_epoch, select_metric, metrics (test), valid_metrics (best epoch), n_valid, n_test, data (counts per
    part), model_config (the model's options and parameter count), lr, batch_size, device, wall_time_s,
    train_time_s, eval_time_s, and ``info`` (e.g. max_train).
    ``max_valid`` / ``max_test`` keep only the first rows of the validation / test set (quick runs; recorded).
    A run interrupted after some epochs resumes from ``out_dir/last.pt`` (the trainer's rule).
    """
    start = time.perf_counter()
    defaults = experiment_defaults(experiment)
    epochs = defaults["epochs"] if epochs is None else epochs
    batch_size = defaults["batch_size"] if batch_size is None else batch_size
    if lr is None:
        lr = defaults.get(f"lr_{model_name}", defaults["lr"])
    out_dir = Path(out_dir)
    device = resolve_device(device)
    evals = EvalSets(valid=first_rows(evals.valid, max_valid), test=first_rows(evals.test, max_test))

    seed_everything(seed)
    model = build_model(model_name, experiment, **dict(model_overrides or {}))
    result = train(
        model, data, epochs=epochs, batch_size=batch_size, lr=lr, out_dir=out_dir, device=device, seed=seed,
        evaluate=lambda m: score(m, evals.valid), select_metric=select_metric, progress=progress,
    )  # fmt: skip

    t0 = time.perf_counter()
    load_weights(model, result.best_path)
    model.eval()
    torch.manual_seed(derived_seed(seed, _TEST_STREAM))
    with torch.no_grad():
        test_metrics = {k: float(v) for k, v in score(model, evals.test).items()}
    test_time = time.perf_counter() - t0

    record = {
        "experiment": experiment,
        "model": model_name,
        "supervision": supervision,
        "seed": seed,
        "epochs": epochs,
        "best_epoch": result.best_epoch,
        "select_metric": f"valid {select_metric}",
        "metrics": test_metrics,
        "valid_metrics": result.best_metrics,
        "n_valid": len(evals.valid),
        "n_test": len(evals.test),
        "max_valid": max_valid,
        "max_test": max_test,
        "data": data.describe(),
        # what the core's defaults were for this run, so a later change of a default cannot blur it
        "model_config": {
            **dict(model_overrides or {}),
            "prior_expert": model.prior_expert,
            "expert_variance": model.expert_variance,
            "subset_terms": getattr(model, "subset_terms", None),
            "parameters": model.num_parameters(),
        },
        "lr": lr,
        "batch_size": batch_size,
        "device": str(device),
        "train_time_s": round(sum(r["time_s"] for r in result.history), 1),
        "eval_time_s": round(sum(r["eval_time_s"] for r in result.history) + test_time, 1),
        "wall_time_s": round(time.perf_counter() - start, 1),
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "finished_at_unix": round(time.time(), 1),
        **dict(info or {}),
    }
    write_json(record, out_dir / RESULT_FILE)
    return record
