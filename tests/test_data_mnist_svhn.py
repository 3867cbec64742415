"""MNIST-SVHN: the SVHN .mat loader on files written in the real format, MMVAE's pairing recipe, the shipped test
pairing (MNIST side; SVHN is not on this machine) and the assembled data set on a synthetic SVHN."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import torch

from training.data.mnist_svhn import distinct_pairs, load_mnist_svhn, load_pairing, load_svhn_mat, pair_by_class


@pytest.fixture(scope="module")
def test_pairing(shared_data):
    return load_pairing(shared_data / "mnist_svhn", "test")


def write_svhn_mat(path, images_hwcn: np.ndarray, y: np.ndarray) -> None:
    """The layout of the official ``*_32x32.mat``: X uint8 (32, 32, 3, N), y (N, 1) with 10 for the digit 0."""
    scipy.io.savemat(path, {"X": images_hwcn, "y": y.reshape(-1, 1).astype(np.uint8)})


def test_svhn_mat_loader(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(32, 32, 3, 7), dtype=np.uint8)
    y = np.array([10, 1, 2, 3, 9, 10, 5])
    write_svhn_mat(tmp_path / "test_32x32.mat", x, y)
    images, labels = load_svhn_mat(tmp_path / "test_32x32.mat")
    assert images.shape == (7, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.tolist() == [0, 1, 2, 3, 9, 0, 5]
    # image k, channel c, row h, column w is X[h, w, c, k]
    for k, c, h, w in [(0, 0, 0, 0), (3, 2, 5, 17), (6, 1, 31, 30)]:
        assert images[k, c, h, w].item() == x[h, w, c, k]
    scipy.io.savemat(tmp_path / "bad.mat", {"X": x[:, :16], "y": y.reshape(-1, 1)})
    with pytest.raises(ValueError):
        load_svhn_mat(tmp_path / "bad.mat")


def test_pairing_recipe():
    rng = np.random.default_rng(1)
    la = rng.integers(0, 3, size=60)
    lb = rng.integers(0, 3, size=45)
    a, b = pair_by_class(la, lb, seed=7, max_per_class=12, permutations=4)
    assert np.array_equal(la[a], lb[b])  # every pair is one class
    start = 0
    for label in range(3):
        n = min((la == label).sum(), (lb == label).sum(), 12)
        block_a, block_b = a[start : start + 4 * n], b[start : start + 4 * n]
        assert (la[block_a] == label).all()  # class blocks in order 0, 1, 2
        # each permutation uses the first n indices of the class, each once
        first_a, first_b = np.flatnonzero(la == label)[:n], np.flatnonzero(lb == label)[:n]
        for p in range(4):
            assert sorted(block_a[p * n : (p + 1) * n]) == first_a.tolist()
            assert sorted(block_b[p * n : (p + 1) * n]) == first_b.tolist()
        start += 4 * n
    assert start == len(a) == len(b)
    again = pair_by_class(la, lb, seed=7, max_per_class=12, permutations=4)
    other = pair_by_class(la, lb, seed=8, max_per_class=12, permutations=4)
    assert np.array_equal(again[0], a) and np.array_equal(again[1], b)
    assert not np.array_equal(other[0], a)


@pytest.mark.full_data
def test_pairing_uses_every_image_dm_times_when_it_is_the_smaller_side(mnist):
    labels = mnist.y_test.numpy()
    richer = np.repeat(np.arange(10), 2000)  # more of every class than MNIST test has
    a, b = pair_by_class(labels, richer, seed=0, permutations=30)
    assert len(a) == 30 * 10000
    assert (np.bincount(a, minlength=10000) == 30).all()
    assert np.array_equal(labels[a], richer[b])


@pytest.mark.full_data
def test_shipped_test_pairing_is_class_blocks_of_mnist_test(test_pairing, mnist):
    idx_m, idx_s = test_pairing
    assert idx_m.shape == idx_s.shape == (300000,)
    labels = mnist.y_test.numpy()[idx_m]
    counts = np.bincount(mnist.y_test.numpy(), minlength=10)
    # blocks of 30 x (class count) pairs, classes 0..9 in order
    assert np.array_equal(labels, np.repeat(np.arange(10), 30 * counts))
    assert (np.bincount(idx_m, minlength=10000) == 30).all()
    assert idx_s.min() >= 0 and idx_s.max() < 26032
    svhn_uses = np.bincount(idx_s)
    assert (svhn_uses[svhn_uses > 0] == 30).all() and (svhn_uses > 0).sum() == 10000


@pytest.mark.full_data
def test_distinct_pairs_of_the_test_pairing(test_pairing, mnist):
    m, s = distinct_pairs(*test_pairing)
    assert len(m) == 10000 and len(np.unique(m)) == 10000 and len(np.unique(s)) == 10000
    # in pairing order: class blocks again
    assert np.array_equal(mnist.y_test.numpy()[m], np.repeat(np.arange(10), np.bincount(mnist.y_test.numpy())))


@pytest.mark.full_data
def test_load_mnist_svhn_on_a_synthetic_svhn(shared_data, tmp_path, test_pairing, mnist):
    """SVHN stand-ins in the official format whose pixels encode their digit (value 20 * label)."""
    idx_m, idx_s = test_pairing
    test_labels = np.zeros(26032, dtype=np.int64)
    test_labels[idx_s] = mnist.y_test.numpy()[idx_m]  # consistent with the shipped test pairing
    rng = np.random.default_rng(0)
    train_labels = rng.integers(0, 10, size=300)
    for name, labels in (("test", test_labels), ("train", train_labels)):
        x = np.broadcast_to((20 * labels).astype(np.uint8), (32, 32, 3, len(labels)))
        write_svhn_mat(tmp_path / f"{name}_32x32.mat", np.ascontiguousarray(x), np.where(labels == 0, 10, labels))

    train, sets = load_mnist_svhn(shared_data, supervision=0.5, seed=0, svhn_dir=tmp_path)
    n_pairs = 30 * sum(min((mnist.y_train == c).sum().item(), (train_labels == c).sum()) for c in range(10))
    assert train.n_paired() == round(0.5 * n_pairs)
    # the paper's code's unpaired streams (the default): each draws from all pairs
    assert train.n_unpaired("mnist") == train.n_unpaired("svhn") == n_pairs == train.n_objects
    rows = torch.arange(0, train.n_paired(), 97)
    svhn = train.paired["svhn"].take(rows)
    assert svhn.dtype == torch.float32 and svhn.shape == (len(rows), 3, 32, 32)
    svhn_digit = torch.round(svhn[:, 0, 0, 0] * 255 / 20).long()
    mnist_images = train.paired["mnist"].take(rows)
    # the paired MNIST image is a training image of the same digit
    assert mnist_images.shape == (len(rows), 1, 28, 28)
    lookup = {mnist.x_train[i].numpy().tobytes(): mnist.y_train[i].item() for i in range(60000)}
    assert [lookup[img.numpy().tobytes()] for img in mnist_images] == svhn_digit.tolist()

    assert len(sets.test) + len(sets.valid) == 10000
    for part in (sets.test, sets.valid):
        assert torch.equal(torch.round(part.data["svhn"][:, 0, 0, 0] * 255 / 20).long(), part.labels)
    assert len(sets.test) == 5000  # MNIST test images 0-4999
