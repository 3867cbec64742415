"""The experiments of the paper, each behind one function with the same signature:

    train_one(model_name, supervision, epochs, data_dir, out_dir, device, seed, **overrides) -> dict

It trains one model at one supervision level, picks the best epoch on a validation set and returns (and writes to
``out_dir/result.json``) the best checkpoint's metrics on the test set (``"metrics"``, keys as in DESIGN.md), its
validation metrics, the epochs and the wall time. Modules are imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

# experiment -> (module, function) of its train_one
EXPERIMENTS: dict[str, tuple[str, str]] = {
    "mnist-split": ("training.experiments.mnist_split", "train_one"),
    "mnist-split-3": ("training.experiments.mnist_split", "train_one_3"),
    "mnist-svhn": ("training.experiments.mnist_svhn", "train_one"),
    "cub-captions": ("training.experiments.cub", "train_one"),
    "spectra": ("training.spectra.experiment", "train_one"),
}

# DESIGN.md's report keys, in table order
METRIC_KEYS: dict[str, tuple[str, ...]] = {
    "mnist-split": ("both", "top", "bottom"),
    "mnist-split-3": ("all", "top", "middle", "bottom"),
    "mnist-svhn": ("joint", "mnist_to_svhn", "svhn_to_mnist"),
    "cub-captions": ("ground_truth", "joint", "image_to_caption", "caption_to_image"),
}

TrainOne = Callable[..., dict[str, Any]]


def get_train_one(experiment: str) -> TrainOne:
    """The ``train_one`` function of ``experiment``.

    Raises:
        ValueError: unknown experiment.
    """
    try:
        module, function = EXPERIMENTS[experiment]
    except KeyError:
        raise ValueError(f"unknown experiment {experiment!r}; known: {', '.join(EXPERIMENTS)}") from None
    return getattr(import_module(module), function)


__all__ = ["EXPERIMENTS", "METRIC_KEYS", "get_train_one"]
