"""CUB CCA metric: CCA fit, correlation, sentence embedding and MMVAE's file formats, against direct numpy
computations on small synthetic data."""

from __future__ import annotations

import pickle
import sys
import types
from collections import Counter, OrderedDict

import numpy as np
import pytest
import torch

from training.data.cub import EOS_ID, PAD_ID, Vocabulary
from training.metrics.cca import (
    CCAProjection,
    SentenceEmbedder,
    cca_correlation,
    cub_coherence,
    embedding_table,
    fit_cca,
    load_cca_projection,
    load_pickle,
    load_vocab_json,
    principal_projector,
    save_cca_projection,
    sentence_embeddings,
    weighted_average,
    word_weights,
)


@pytest.fixture(scope="module")
def views():
    """Two views sharing a 3-d latent signal of decreasing strength, plus independent noise."""
    rng = np.random.default_rng(0)
    n = 4000
    z = rng.standard_normal((n, 3)) * np.array([3.0, 1.5, 0.7])
    x = z @ rng.standard_normal((3, 6)) + rng.standard_normal((n, 6)) + 2.0
    y = z @ rng.standard_normal((3, 4)) + rng.standard_normal((n, 4)) - 1.0
    return x, y


def canonical_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Singular values of Cxx^-1/2 Cxy Cyy^-1/2 (the textbook definition)."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    n = x.shape[0] - 1
    cxx, cyy, cxy = xc.T @ xc / n, yc.T @ yc / n, xc.T @ yc / n

    def inv_sqrt(c):
        w, v = np.linalg.eigh(c)
        return v @ np.diag(w**-0.5) @ v.T

    return np.linalg.svd(inv_sqrt(cxx) @ cxy @ inv_sqrt(cyy), compute_uv=False)


def test_fit_cca_matches_the_textbook_correlations(views):
    x, y = views
    rho, proj = fit_cca(x, y, k=4)
    assert np.allclose(rho, canonical_correlations(x, y), atol=1e-8)
    assert rho[0] > rho[1] > rho[2] > 0.3 > rho[3]
    # each pair of projected columns correlates by rho_j; different columns do not correlate
    px = ((torch.as_tensor(x) - proj.im_mean) @ proj.im_proj).numpy()
    py = ((torch.as_tensor(y) - proj.emb_mean) @ proj.emb_proj).numpy()
    corr = np.corrcoef(px.T, py.T)
    assert np.allclose(np.diag(corr[:4, 4:]), rho, atol=1e-6)
    off = corr[:4, 4:] - np.diag(np.diag(corr[:4, 4:]))
    assert np.abs(off).max() < 1e-6
    # eigenvectors scaled to unit length over both views, as scipy's eig returns them (MMVAE)
    assert np.allclose(np.linalg.norm(np.vstack([proj.im_proj, proj.emb_proj]), axis=0), 1.0)
    assert torch.allclose(proj.im_mean, torch.as_tensor(x.mean(0)))


def test_cca_correlation_is_the_mean_cosine(views):
    x, y = views
    _, proj = fit_cca(x, y, k=3)
    a = (x - proj.im_mean.numpy()) @ proj.im_proj.numpy()
    b = (y - proj.emb_mean.numpy()) @ proj.emb_proj.numpy()
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    got = cca_correlation(torch.as_tensor(x), torch.as_tensor(y), proj)
    assert got == pytest.approx(cosine.mean(), abs=1e-10)
    # shuffled pairs are uncorrelated on average
    shuffled = cca_correlation(torch.as_tensor(x), torch.as_tensor(y[::-1].copy()), proj)
    assert abs(shuffled) < 0.1 < got


def test_correlation_of_a_view_with_itself_is_one(views):
    x, _ = views
    w = torch.randn(6, 3, dtype=torch.float64)
    mean = torch.as_tensor(x.mean(0))
    same = CCAProjection(mean, w, mean, w)
    assert cca_correlation(torch.as_tensor(x), torch.as_tensor(x), same) == pytest.approx(1.0, abs=1e-12)


def test_word_weights():
    vocab = Vocabulary(["<exc>", "<pad>", "<eos>", "a", "b"], Counter())
    counts = Counter({"a": 6, "b": 2, "rare": 1, "odd": 1})  # total 10, 2 tokens out of the vocabulary
    w = word_weights(counts, vocab, a=0.1)
    assert np.allclose(w, [0.1 / (0.1 + 0.2), 0.0, 0.0, 0.1 / (0.1 + 0.6), 0.1 / (0.1 + 0.2)])


def test_embedding_table():
    vocab = Vocabulary(["<exc>", "<pad>", "<eos>", "a", "b"], Counter())
    table = embedding_table({"a": np.full(4, 5.0), "b": np.arange(4.0), "unused": np.zeros(4)}, vocab, dim=4)
    assert table.shape == (5, 4) and table.dtype == np.float32
    assert table[:3, 0].tolist() == [-1.0, 0.0, 1.0] and table[4].tolist() == [0, 1, 2, 3]


def test_weighted_average_stops_after_the_first_eos():
    rng = np.random.default_rng(1)
    emb, weights = rng.standard_normal((8, 5)), rng.random(8)
    ids = np.array([[3, 4, EOS_ID, PAD_ID, PAD_ID, 7], [5, 6, 7, 3, 4, 5], [EOS_ID, 3, EOS_ID, 4, PAD_ID, PAD_ID]])
    expected = []
    for row in ids:  # MMVAE: keep ids up to and including the first <eos>, sum weighted vectors, divide by count
        kept = row[: list(row).index(EOS_ID) + 1] if EOS_ID in row else row
        expected.append(sum(weights[i] * emb[i] for i in kept) / len(kept))
    got = weighted_average(torch.as_tensor(ids), torch.as_tensor(emb), torch.as_tensor(weights))
    assert np.allclose(got.numpy(), np.array(expected))


def test_principal_direction_removal():
    rng = np.random.default_rng(2)
    e = rng.standard_normal((300, 6)) * np.array([5.0, 1, 1, 1, 1, 1]) + 3.0
    u = principal_projector(torch.as_tensor(e)).numpy()
    v = np.linalg.svd(e - e.mean(0))[2][0]
    assert np.allclose(u, np.outer(v, v))
    emb = rng.standard_normal((10, 6))
    ids = torch.tensor([[3, 4, EOS_ID, PAD_ID], [5, 6, 7, 8]])
    s = sentence_embeddings(ids, torch.as_tensor(emb), torch.ones(10, dtype=torch.float64), torch.as_tensor(u))
    raw = weighted_average(ids, torch.as_tensor(emb), torch.ones(10, dtype=torch.float64)).numpy()
    assert np.allclose(s.numpy(), raw - (raw @ v)[:, None] * v)
    assert np.allclose(s.numpy() @ v, 0.0)


def test_mmvae_file_formats(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((7, 300)).astype(np.float32)
    weights = rng.random(7)
    u = torch.randn(300, 300)
    for name, obj in (("emb", emb), ("weights", weights), ("pc", u)):
        with open(tmp_path / f"cub.{name}", "wb") as f:
            pickle.dump(obj, f)
    embedder = SentenceEmbedder.load(tmp_path)
    assert np.array_equal(embedder.emb.numpy(), emb.astype(np.float64))
    assert np.array_equal(embedder.weights.numpy(), weights) and torch.equal(embedder.projector, u.double())

    # cub.all: MMVAE's word counter, a Counter/OrderedDict subclass of its `datasets` module
    class OrderedCounter(Counter, OrderedDict):
        def __reduce__(self):
            return self.__class__, (OrderedDict(self),)

    module = types.ModuleType("datasets")
    OrderedCounter.__module__, OrderedCounter.__qualname__ = "datasets", "OrderedCounter"
    module.OrderedCounter = OrderedCounter
    monkeypatch.setitem(sys.modules, "datasets", module)
    with open(tmp_path / "cub.all", "wb") as f:
        pickle.dump(OrderedCounter({"bird": 3, "wing": 1}), f)
    monkeypatch.delitem(sys.modules, "datasets")
    counts = load_pickle(tmp_path / "cub.all")
    assert counts == Counter({"bird": 3, "wing": 1}) and list(counts) == ["bird", "wing"]

    with open(tmp_path / "evil", "wb") as f:
        pickle.dump(tmp_path, f)  # a pathlib object: not an array, tensor or counter
    with pytest.raises(pickle.UnpicklingError):
        load_pickle(tmp_path / "evil")

    proj = CCAProjection(torch.randn(2048), torch.randn(2048, 40), torch.randn(300), torch.randn(300, 40))
    save_cca_projection(proj, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == [
        "emb_mean.pt",
        "emb_proj.pt",
        "im_proj.pt",
        "images_mean.pt",
    ]
    loaded = load_cca_projection(tmp_path)
    assert torch.equal(loaded.im_proj, proj.im_proj.double()) and torch.equal(loaded.emb_mean, proj.emb_mean.double())

    (tmp_path / "cub.vocab").write_text(
        '{"w2i": {"<exc>": 0, "<pad>": 1, "<eos>": 2, "bird": 3}, '
        '"i2w": {"0": "<exc>", "1": "<pad>", "2": "<eos>", "3": "bird"}}'
    )
    assert load_vocab_json(tmp_path / "cub.vocab").i2w == ["<exc>", "<pad>", "<eos>", "bird"]


def test_cub_coherence_with_a_perfect_model(views):
    """Images and 'captions' whose sentence embedding is a linear view: a model that gives the true partner back
    scores the ground-truth correlation both ways."""
    x, _ = views
    rng = np.random.default_rng(4)
    n, vocab_size = 600, 12
    captions = torch.as_tensor(rng.integers(3, vocab_size, size=(n, 12)))
    captions[:, 9], captions[:, 10:] = EOS_ID, PAD_ID
    emb = torch.as_tensor(rng.standard_normal((vocab_size, 4)))
    embed = SentenceEmbedder(emb, torch.ones(vocab_size, dtype=torch.float64), torch.zeros(4, 4, dtype=torch.float64))
    sentence = embed(captions)
    images = torch.as_tensor(x[:n]) + sentence.sum(1, keepdim=True)  # images correlated with their caption
    _, proj = fit_cca(images, sentence, k=3)
    row_of_image = {tuple(r.tolist()): i for i, r in enumerate(images)}
    row_of_caption = {tuple(r.tolist()): i for i, r in enumerate(captions)}
    assert len(row_of_image) == len(row_of_caption) == n

    def reconstruct(observed):
        if "image" in observed:
            rows = [row_of_image[tuple(r.tolist())] for r in observed["image"]]
            logits = torch.nn.functional.one_hot(captions[rows], vocab_size).double()  # logits -> ids by argmax
            return {"image": images[rows], "caption": logits}
        rows = [row_of_caption[tuple(r.tolist())] for r in observed["caption"]]
        return {"image": images[rows], "caption": captions[rows]}

    scores = cub_coherence(
        reconstruct, lambda k: {"image": images[:k], "caption": captions[:k]}, images, captions, embed, proj, 200, 256
    )
    truth = cca_correlation(images, sentence, proj)
    assert scores["ground_truth"] == pytest.approx(truth)
    assert scores["image_to_caption"] == pytest.approx(truth)
    assert scores["caption_to_image"] == pytest.approx(truth)
    assert scores["joint"] == pytest.approx(cca_correlation(images[:200], sentence[:200], proj))
