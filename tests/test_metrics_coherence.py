"""Cross- and joint coherence (MNIST-SVHN metrics), on real MNIST digits with the shipped MNIST oracle standing in
for both modalities' oracles (SVHN is not on this machine)."""

from __future__ import annotations

import pytest

from training.metrics.coherence import batches, cross_coherence, joint_coherence
from training.oracles import accuracy, predict


@pytest.fixture(scope="module")
def data(mnist):
    return mnist.x_test[:1200], mnist.y_test[:1200]


@pytest.fixture(scope="module")
def oracle(mnist_oracle):
    return mnist_oracle


def test_batches():
    assert batches(5, 2) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert batches(0, 3) == []


def test_cross_coherence(data, oracle):
    """Modality "a" is a digit; "b" is generated from it as the digit turned upside down. From "b", "a" is generated
    as the digit itself. So a_to_b is the oracle's accuracy on flipped digits, b_to_a its accuracy on the digits."""
    x, y = data
    flipped = x.flip(-2)

    def reconstruct(observed):
        name, v = next(iter(observed.items()))
        digits = v if name == "a" else v.flip(-2)
        return {"a": digits, "b": digits.flip(-2)}

    scores = cross_coherence(reconstruct, {"a": oracle, "b": oracle}, {"a": x, "b": flipped}, y, batch_size=500)
    assert scores == {
        "a_to_b": pytest.approx(accuracy(oracle, flipped, y)),
        "b_to_a": pytest.approx(accuracy(oracle, x, y)),
    }
    assert scores["a_to_b"] < 0.5 < scores["b_to_a"]


def test_joint_coherence_counts_agreement(data, oracle):
    x, _ = data
    pool_a, pool_b = x[:700], x[500:1200]  # rows 500-699 of a equal rows 0-199 of b
    drawn = {"n": 0}

    def sample_joint(n):
        i = drawn["n"]
        drawn["n"] += n
        return {"a": pool_a[i : i + n], "b": pool_b[i : i + n]}

    score = joint_coherence(sample_joint, {"a": oracle, "b": oracle}, n=700, batch_size=300)
    assert drawn["n"] == 700
    expected = (predict(oracle, pool_a) == predict(oracle, pool_b)).float().mean().item()
    assert score == pytest.approx(expected)

    same = joint_coherence(lambda n: {"a": x[:n], "b": x[:n].clone()}, {"a": oracle, "b": oracle}, n=400)
    assert same == 1.0
