"""MNIST-Split accuracy (synergy and cross-coherence) with reconstructions whose oracle accuracy is known directly."""

from __future__ import annotations

import pytest
import torch

from training.data.mnist import split_halves, split_three
from training.metrics.synergy import joint_key, split_accuracy
from training.oracles import accuracy


@pytest.fixture(scope="module")
def data(mnist):
    return mnist.x_test[:1500], mnist.y_test[:1500]


@pytest.fixture(scope="module")
def oracle(mnist_oracle):
    return mnist_oracle


def known_parts(truth: dict[str, torch.Tensor]):
    """A perfect model: gives back the true strips of the images whose observed strip it is shown."""
    row_of = {m: {t[i].numpy().tobytes(): i for i in range(t.shape[0])} for m, t in truth.items()}
    assert all(len(r) == t.shape[0] for r, t in zip(row_of.values(), truth.values(), strict=True))  # no duplicates

    def reconstruct(observed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        name, x = next(iter(observed.items()))
        rows = torch.tensor([row_of[name][xi.numpy().tobytes()] for xi in x])
        return {m: t[rows] for m, t in truth.items()}

    return reconstruct


def blank_missing(shapes: dict[str, tuple[int, ...]]):
    """Observed strips are given back, unobserved ones are blank."""

    def reconstruct(observed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        n = next(iter(observed.values())).shape[0]
        return {m: observed[m] if m in observed else torch.zeros(n, *shape) for m, shape in shapes.items()}

    return reconstruct


def test_identity_reconstruction_scores_the_oracle_accuracy(data, oracle):
    x, y = data
    parts = split_halves(x)
    scores = split_accuracy(known_parts(parts), oracle, parts, y, batch_size=400)
    expected = accuracy(oracle, x, y)
    assert scores == {
        "both": pytest.approx(expected),
        "top": pytest.approx(expected),
        "bottom": pytest.approx(expected),
    }


def test_blank_missing_half(data, oracle):
    x, y = data
    parts = split_halves(x)
    scores = split_accuracy(blank_missing({m: p.shape[1:] for m, p in parts.items()}), oracle, parts, y, 700)
    top_only, bottom_only = x.clone(), x.clone()
    top_only[:, :, 14:] = 0
    bottom_only[:, :, :14] = 0
    assert scores["both"] == pytest.approx(accuracy(oracle, x, y))
    assert scores["top"] == pytest.approx(accuracy(oracle, top_only, y))
    assert scores["bottom"] == pytest.approx(accuracy(oracle, bottom_only, y))
    assert scores["top"] < scores["both"] and scores["bottom"] < scores["both"]


def test_three_strips_reassemble_with_a_zero_last_row(data, oracle):
    x, y = data
    parts = split_three(x)
    scores = split_accuracy(blank_missing({m: p.shape[1:] for m, p in parts.items()}), oracle, parts, y, 1000)
    assert set(scores) == {"all", "top", "middle", "bottom"}
    cut = x.clone()
    cut[:, :, 27] = 0
    assert scores["all"] == pytest.approx(accuracy(oracle, cut, y))
    middle_only = torch.zeros_like(x)
    middle_only[:, :, 9:18] = x[:, :, 9:18]
    assert scores["middle"] == pytest.approx(accuracy(oracle, middle_only, y))


def test_joint_key():
    assert joint_key(2) == "both" and joint_key(3) == "all" and joint_key(5) == "all"
