"""MNIST loading and the MNIST-Split strips, on the real mnist.npz."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from training.data.mnist import (
    evaluation_sets,
    load_mnist,
    load_mnist_split,
    part_names,
    read_idx,
    reassemble,
    split_halves,
    split_rows,
    split_three,
)
from training.data.semi import split_supervision


@pytest.mark.full_data
def test_load_matches_the_readme(mnist, shared_data):
    assert mnist.x_train.shape == (60000, 1, 28, 28) and mnist.x_test.shape == (10000, 1, 28, 28)
    assert mnist.x_train.dtype == torch.float32 and mnist.y_train.dtype == torch.int64
    assert mnist.x_train.min() == 0.0 and mnist.x_train.max() == 1.0
    # canonical class counts and first labels (README)
    assert torch.bincount(mnist.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert mnist.x_train.mean().item() == pytest.approx(0.13066, abs=1e-5)
    # x / 255 exactly, as torchvision's ToTensor
    raw = np.load(shared_data / "mnist" / "mnist.npz")["x_test"][:5]
    assert torch.equal(mnist.x_test[:5, 0], torch.from_numpy(raw.astype(np.float32) / 255.0))
    # the same file found by its own path or its folder
    assert torch.equal(load_mnist(shared_data / "mnist" / "mnist.npz").y_test, mnist.y_test)


def test_halves(mnist):
    x = mnist.x_test[:100]
    parts = split_halves(x)
    assert list(parts) == ["top", "bottom"]
    assert parts["top"].shape == parts["bottom"].shape == (100, 1, 14, 28)
    assert torch.equal(parts["top"], x[:, :, :14]) and torch.equal(parts["bottom"], x[:, :, 14:])
    assert torch.equal(reassemble(parts), x)


def test_three_strips_drop_row_27(mnist):
    x = mnist.x_test[:100]
    parts = split_three(x)
    assert list(parts) == ["top", "middle", "bottom"]
    assert all(p.shape == (100, 1, 9, 28) for p in parts.values())
    assert torch.equal(parts["middle"], x[:, :, 9:18]) and torch.equal(parts["bottom"], x[:, :, 18:27])
    expected = x.clone()
    expected[:, :, 27] = 0
    assert torch.equal(reassemble(parts), expected)


@pytest.mark.parametrize(("n", "rows", "dropped"), [(1, 28, 0), (4, 7, 0), (5, 5, 3), (7, 4, 0), (28, 1, 0)])
def test_n_strips(mnist, n, rows, dropped):
    x = mnist.x_test[:10]
    parts = split_rows(x, n)
    assert list(parts) == part_names(n) and len(parts) == n
    assert all(p.shape == (10, 1, rows, 28) for p in parts.values())
    back = reassemble(parts)
    assert back.shape == x.shape
    assert torch.equal(back[:, :, : 28 - dropped], x[:, :, : 28 - dropped])
    assert (back[:, :, 28 - dropped :] == 0).all()


def test_reassemble_accepts_flat_strips(mnist):
    parts = split_halves(mnist.x_test[:3])
    flat = [p.reshape(3, -1) for p in parts.values()]
    assert torch.equal(reassemble(flat), mnist.x_test[:3])


def test_bad_split_is_refused(mnist):
    with pytest.raises(ValueError):
        split_rows(mnist.x_test[:2], 29)


def test_evaluation_sets_are_the_test_halves(mnist):
    half = len(mnist.y_test) // 2  # 5000 on MNIST (the samples in tests/data keep rows 0-499 and 5000-5499)
    sets = evaluation_sets(mnist.x_test, mnist.y_test, 2)
    assert len(sets.test) == len(sets.valid) == half
    assert torch.equal(sets.test.labels, mnist.y_test[:half]) and torch.equal(sets.valid.labels, mnist.y_test[half:])
    assert torch.equal(reassemble(sets.test.data), mnist.x_test[:half])
    assert torch.equal(reassemble(sets.valid.data), mnist.x_test[half:])


@pytest.mark.full_data
def test_load_mnist_split_pairs_strips_of_the_same_image(shared_data, mnist):
    train, sets = load_mnist_split(shared_data, supervision=0.1, seed=3, unpaired="rest")
    assert train.n_paired() == 6000
    assert train.n_unpaired("top") == train.n_unpaired("bottom") == 27000
    paired_idx, unpaired_idx = split_supervision(60000, 0.1, ["top", "bottom"], 3, unpaired="rest")
    rows = torch.arange(0, 6000, 499)
    top, bottom = train.paired["top"].take(rows), train.paired["bottom"].take(rows)
    assert torch.equal(reassemble([top, bottom]), mnist.x_train[paired_idx[rows.numpy()]])
    assert torch.equal(train.unpaired["bottom"].take(rows), mnist.x_train[unpaired_idx["bottom"][rows.numpy()], :, 14:])
    assert len(sets.test) == 5000

    train3, sets3 = load_mnist_split(shared_data, supervision=1.0, seed=0, n_parts=3)
    # the paper's code's unpaired streams (the default): every strip of all 60,000 images, also at supervision 1
    assert train3.n_paired() == 60000 and all(train3.n_unpaired(m) == 60000 for m in ("top", "middle", "bottom"))
    assert list(sets3.valid.data) == ["top", "middle", "bottom"]


def test_read_idx(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(struct.pack(">HBB3I", 0, 0x08, 3, 2, 3, 4) + images.tobytes())
    assert np.array_equal(read_idx(path), images)
    labels = tmp_path / "y-idx1-ubyte"
    labels.write_bytes(struct.pack(">HBBI", 0, 0x08, 1, 3) + bytes([7, 2, 1]))
    assert read_idx(labels).tolist() == [7, 2, 1]
    labels.write_bytes(struct.pack(">HBBI", 0, 0x08, 1, 4) + bytes([7, 2, 1]))
    with pytest.raises(ValueError):
        read_idx(labels)
