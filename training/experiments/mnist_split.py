"""MNIST-Split (top / bottom halves) and MNIST-Split-3 (three strips): train one model, score it with the oracle.

Metric (paper section 4.1, ``../shared/data/POE_VAES_PROTOCOL.md``): reconstruct every strip from all strips
(synergy: key ``both`` for two strips, ``all`` for three) and from each single strip (cross-coherence: keys
``top``, ``bottom``, ``middle``), with ONE latent sample each (``model.reconstruct(observed, sample=True)``),
reassemble the 28x28 image and count how often the ResNet-18 oracle gives the true digit.

Selection: the best epoch has the highest ``top`` accuracy (the paper's rule) on the VALID half of MNIST test
(images 5000-9999); the reported numbers are that checkpoint's accuracies on the TEST half (images 0-4999). The
paper's code selects and reports on the same test half, so its numbers are slightly optimistic next to ours.

Oracle: ``oracle=PATH``; by default ``data/oracles/mnist_resnet18.pt`` under the working directory when
``msvae oracle`` wrote one there (the paper's recipe: ResNet-18, 10 epochs, hours on a CPU), else the small one
shipped with the package (:data:`training.oracles.SHIPPED_MNIST_ORACLE`). Nothing is trained before the model.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.data.mnist import EvalSet, evaluation_sets, load_mnist, split_rows
from training.data.semi import UnpairedRule, make_semi_supervised
from training.experiments.common import model_device, run_experiment
from training.metrics.synergy import split_accuracy
from training.oracles import MNIST_ORACLE_FILE, SHIPPED_MNIST_ORACLE, load_mnist_oracle, oracle_record
from training.trainer import resolve_device

DEFAULT_ORACLE = Path("data/oracles") / MNIST_ORACLE_FILE
SELECT_METRIC = "top"
_EXPERIMENT = {2: "mnist-split", 3: "mnist-split-3"}


def oracle_path(path: str | Path | None = None) -> Path:
    """The oracle file to score with: ``path`` when given, else :data:`DEFAULT_ORACLE` when ``msvae oracle`` wrote
    it, else the shipped one. Raises FileNotFoundError, saying how to make one, for a given path that is missing."""
    if path is None:
        return DEFAULT_ORACLE if DEFAULT_ORACLE.exists() else SHIPPED_MNIST_ORACLE
    if not Path(path).exists():
        raise FileNotFoundError(
            f"no MNIST-Split oracle at {path}: `msvae oracle --out DIR` trains one (the paper's recipe, hours on a "
            "CPU; `--width 16 --epochs 4`: minutes), or leave --oracle out to use the shipped one"
        )
    return Path(path)


def split_score(oracle: nn.Module, batch_size: int = 1000) -> Any:
    """``score(model, eval_set)``: :func:`training.metrics.synergy.split_accuracy` with one latent sample."""

    def score(model: nn.Module, eval_set: EvalSet) -> dict[str, float]:
        return split_accuracy(
            lambda observed: model.reconstruct(observed, sample=True),
            oracle, eval_set.data, eval_set.labels, batch_size=batch_size, device=model_device(model),
        )  # fmt: skip

    return score


def train_split(
    n_parts: int,
    model_name: str,
    supervision: float,
    epochs: int | None = None,
    data_dir: str | Path = "../shared/data",
    out_dir: str | Path = "runs/mnist-split",
    device: str | torch.device = "auto",
    seed: int = 0,
    *,
    max_train: int | None = None,
    max_valid: int | None = None,
    max_test: int | None = None,
    oracle: str | Path | None = None,
    unpaired: UnpairedRule = "all",
    lr: float | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    **model_overrides: Any,
) -> dict[str, Any]:
    """Train ``model_name`` on MNIST-Split (``n_parts=2``) or MNIST-Split-3 (``n_parts=3``) at ``supervision``.

    ``max_train`` keeps the first N training images (quick runs; the result records it), ``max_valid`` scores only
    the first N validation images each epoch (the test half is always scored in full). ``unpaired``: "all" (the
    paper's code, the default) or "rest" (see ``training.data.semi``). Other keywords go to ``build_model``.
    Returns :func:`training.experiments.common.run_experiment`'s record with the oracle's file and accuracy.
    """
    experiment = _EXPERIMENT[n_parts]
    mnist = load_mnist(data_dir)
    # load_mnist_split(data_dir, ...) without the max_train cut
    data = make_semi_supervised(split_rows(mnist.x_train[:max_train], n_parts), supervision, seed, unpaired)
    evals = evaluation_sets(mnist.x_test, mnist.y_test, n_parts)

    scorer = oracle_path(oracle)
    net = load_mnist_oracle(scorer, resolve_device(device))
    record = oracle_record(scorer) or {}
    info = {
        "max_train": max_train,
        "n_train": int(min(max_train or mnist.x_train.shape[0], mnist.x_train.shape[0])),
        "unpaired": unpaired,
        "oracle": {"path": str(scorer), "test_accuracy": record.get("test_accuracy"),
                   "width": record.get("width"), "epochs": record.get("epochs")},
    }  # fmt: skip
    return run_experiment(
        experiment, model_name, supervision, data=data, evals=evals, score=split_score(net),
        select_metric=SELECT_METRIC, epochs=epochs, out_dir=out_dir, device=device, seed=seed, lr=lr,
        batch_size=batch_size, model_overrides=model_overrides, info=info, max_valid=max_valid, max_test=max_test,
        progress=progress,
    )  # fmt: skip


train_one = partial(train_split, 2)
train_one.__doc__ = "MNIST-Split (top / bottom halves): :func:`train_split` with two strips."
train_one_3 = partial(train_split, 3)
train_one_3.__doc__ = "MNIST-Split-3 (top / middle / bottom strips): :func:`train_split` with three strips."
