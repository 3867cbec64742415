"""MNIST-SVHN and CUB train_one: a clear error naming the missing files (SVHN and the CUB features are not on this
machine), and the whole pipeline for one epoch on small files the tests write in the real formats."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import scipy.io
import torch

from app.cli import main
from training.data.cub import build_vocabulary, read_captions
from training.data.mnist import load_mnist
from training.experiments import METRIC_KEYS, get_train_one
from training.metrics.cca import (
    CCAProjection,
    SentenceEmbedder,
    cca_correlation,
    principal_projector,
    save_cca_projection,
    weighted_average,
    word_weights,
)


@pytest.mark.full_data
def test_mnist_svhn_names_the_missing_svhn_files(shared_data, tmp_path, capsys):
    train_one = get_train_one("mnist-svhn")
    with pytest.raises(FileNotFoundError) as err:
        train_one("svae", 1.0, epochs=1, data_dir=shared_data, out_dir=tmp_path, svhn_dir=tmp_path / "svhn")
    text = str(err.value)
    assert "train_32x32.mat" in text and "test_32x32.mat" in text and "download_svhn" in text
    missing = [line for line in text.splitlines() if line.startswith("  ")]
    assert len(missing) == 2 and all(line.startswith("  SVHN") for line in missing)  # the shipped files are found
    # the command line turns it into a message and exit status 2
    code = main(["train", "mnist-svhn", "--model", "svae", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert code == 2 and "mnist.npz" in capsys.readouterr().err


def test_cub_names_the_missing_files(shared_data, tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        get_train_one("cub-captions")("vaevae", 1.0, epochs=1, data_dir=shared_data, out_dir=tmp_path)
    text = str(err.value)
    for name in ("text_trainvalclasses.txt", "train.ft", "test.ft", "cub.emb", "im_proj.pt", "CCA_emb.zip"):
        assert name in text
    missing = [line for line in text.splitlines() if line.startswith("  ")]
    assert len(missing) == 10 and not any("text_testclasses.txt" in line for line in missing)  # that one is here


def write_svhn_mat(path, labels: np.ndarray, rng: np.random.Generator) -> None:
    """SVHN's format: X uint8 (32, 32, 3, N), y (N, 1) with 10 for the digit 0."""
    x = rng.integers(0, 256, size=(32, 32, 3, len(labels)), dtype=np.uint8)
    scipy.io.savemat(path, {"X": x, "y": np.where(labels == 0, 10, labels).reshape(-1, 1).astype(np.uint8)})


@pytest.fixture
def svhn_data(shared_data, tmp_path):
    """A data folder: the real MNIST and oracles, a written test pairing of 60 MNIST test images (30 on each side
    of 5000) with 60 written SVHN test images of the same digits, and 200 written SVHN training images."""
    root = tmp_path / "data"
    (root / "mnist_svhn").mkdir(parents=True)
    (root / "svhn").mkdir()
    (root / "mnist").symlink_to(shared_data / "mnist")
    for name in ("mnist_model_MMVAE.pt", "svhn_model_MMVAE.pt"):
        (root / "mnist_svhn" / name).symlink_to(shared_data / "mnist_svhn" / name)
    mnist = load_mnist(shared_data / "mnist")
    mnist_idx = np.r_[np.arange(100, 130), np.arange(6000, 6030)]
    torch.save(torch.as_tensor(mnist_idx), root / "mnist_svhn" / "test-ms-mnist-idx.pt")
    torch.save(torch.arange(60), root / "mnist_svhn" / "test-ms-svhn-idx.pt")
    rng = np.random.default_rng(0)
    write_svhn_mat(root / "svhn" / "test_32x32.mat", mnist.y_test.numpy()[mnist_idx], rng)
    write_svhn_mat(root / "svhn" / "train_32x32.mat", rng.integers(0, 10, size=200), rng)
    return root


@pytest.mark.full_data
def test_mnist_svhn_pipeline_on_written_files(svhn_data, tmp_path):
    record = get_train_one("mnist-svhn")(
        "svae", 0.5, epochs=1, data_dir=svhn_data, out_dir=tmp_path / "run", device="cpu", seed=0,
        max_train=300, n_joint=300, progress=False,
    )  # fmt: skip
    assert set(record["metrics"]) == set(record["valid_metrics"]) == set(METRIC_KEYS["mnist-svhn"])
    assert all(0.0 <= v <= 1.0 for v in [*record["metrics"].values(), *record["valid_metrics"].values()])
    assert record["n_test"] == record["n_valid"] == 30  # MNIST test images < 5000 are the test side
    assert record["lr"] == 1e-4  # the paper's best rate for SVAE on MNIST-SVHN
    data = record["data"]
    # 300 of the pairs drawn at random, then split: 150 paired, each unpaired stream draws from all 300
    assert data["paired"] == 150 and record["n_train"] == 300
    assert data["unpaired"] == dict.fromkeys(data["unpaired"], 300) and len(data["unpaired"]) == 2
    assert record["n_pairs_total"] > 300
    assert json.loads((tmp_path / "run" / "result.json").read_text()) == record
    assert (tmp_path / "run" / "best.pt").is_file()


@pytest.fixture
def cub_data(shared_data, tmp_path):
    """A CUB folder in MMVAE's layout from the real test captions (40 'train' images, 6 test images), random
    ResNet features, and CCA / FastText files written in MMVAE's formats (random word vectors and projections, the
    real word-weight rule and principal direction)."""
    captions = read_captions(shared_data / "cub" / "text_testclasses.txt")
    folder = tmp_path / "data" / "cub"
    (folder / "resnet101_2048").mkdir(parents=True)
    (folder / "text_trainvalclasses.txt").write_text("\n".join(captions[:400]) + "\n")
    (folder / "text_testclasses.txt").write_text("\n".join(captions[400:460]) + "\n")
    gen = torch.Generator().manual_seed(0)
    features = {"train": torch.randn(40, 2048, generator=gen), "test": torch.randn(6, 2048, generator=gen)}
    for split, x in features.items():
        torch.save(x, folder / "resnet101_2048" / f"{split}.ft")

    vocab = build_vocabulary(captions[:400])
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((len(vocab), 300)).astype(np.float32)
    weights = word_weights(vocab.counts, vocab)
    ids = vocab.encode_all(captions[:400])
    raw = weighted_average(ids, torch.as_tensor(emb).double(), torch.as_tensor(weights))
    projector = principal_projector(raw)
    cca = folder / "cca_emb"
    cca.mkdir()
    for name, obj in (("emb", emb), ("weights", weights), ("pc", projector)):
        with open(cca / f"cub.{name}", "wb") as f:
            pickle.dump(obj, f)
    embed = SentenceEmbedder(torch.as_tensor(emb).double(), torch.as_tensor(weights), projector)
    # any projection has the format; fitting one on 2048 + 300 dimensions is tested elsewhere and slow
    proj = CCAProjection(
        *(torch.randn(*shape, generator=gen).double() for shape in ((2048,), (2048, 10), (300,), (300, 10)))
    )
    save_cca_projection(proj, cca)
    return {"root": tmp_path / "data", "vocab": vocab, "embed": embed, "proj": proj, "features": features,
            "captions": captions[400:460]}  # fmt: skip


def test_cub_pipeline_on_written_files(cub_data, tmp_path):
    record = get_train_one("cub-captions")(
        "vaevae", 0.5, epochs=1, data_dir=cub_data["root"], out_dir=tmp_path / "run", device="cpu", seed=0,
        max_train=200, n_joint=50, progress=False,
    )  # fmt: skip
    keys = set(METRIC_KEYS["cub-captions"])
    assert set(record["metrics"]) == set(record["valid_metrics"]) == keys
    assert all(-1.0 <= v <= 1.0 for v in record["metrics"].values())
    assert record["vocab_size"] == len(cub_data["vocab"]) and record["n_test"] == record["n_valid"] == 30
    # the ground-truth correlation depends on the data alone: captions of the even test images and their images
    rows = torch.arange(60)
    test_rows = rows[(rows // 10) % 2 == 0]
    ids = cub_data["vocab"].encode_all([cub_data["captions"][i] for i in test_rows])
    truth = cca_correlation(cub_data["features"]["test"][test_rows // 10], cub_data["embed"](ids), cub_data["proj"])
    assert record["metrics"]["ground_truth"] == pytest.approx(truth)
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "result.json").is_file()


def test_cub_rejects_cca_files_of_another_vocabulary(cub_data, tmp_path):
    cca = cub_data["root"] / "cub" / "cca_emb"
    with open(cca / "cub.emb", "wb") as f:
        pickle.dump(np.zeros((5, 300), dtype=np.float32), f)
    with pytest.raises(ValueError, match="vocabulary"):
        get_train_one("cub-captions")("svae", 1.0, epochs=1, data_dir=cub_data["root"], out_dir=tmp_path / "r")
