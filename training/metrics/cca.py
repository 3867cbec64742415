"""CUB image-caption coherence by canonical correlation analysis (MMVAE ``src/report/analyse_cub.py``).

Correlation of an (image, caption) pair: the cosine similarity of ``(image_ft - im_mean) @ im_proj`` and
``(sentence_emb - emb_mean) @ emb_proj`` (the paper's ``phi(x) = W^T x - avg(W^T x)``), averaged over the pairs.
``im_proj`` (2048 x 40) and ``emb_proj`` (300 x 40) are the top-40 CCA directions of the training pairs
(:func:`fit_cca`); MMVAE ships them as ``im_proj.pt``, ``emb_proj.pt``, ``images_mean.pt``, ``emb_mean.pt``.

Sentence embedding (MMVAE's FastText pipeline, :func:`sentence_embeddings`): the ids up to and including the first
``<eos>``; each word's 300-d vector (``cub.emb``: row i = word id i; rows 0, 1, 2 for ``<exc>``, ``<pad>``,
``<eos>`` are the constant vectors -1, 0, +1) times its weight ``a / (a + p(w))`` (``cub.weights``, a = 1e-3, p the
word's share of the training tokens; ``<exc>`` gets the share of all out-of-vocabulary tokens, ``<pad>`` and
``<eos>`` weight 0), summed and divided by the number of ids kept; then the first principal direction of the
training sentences is removed: ``e - u e`` with ``u = v v^T`` (``cub.pc``, v the first right singular vector of the
centred training embeddings).

File formats (MMVAE ``CCA_emb.zip``): ``*.pt`` are torch-saved tensors; ``cub.emb`` and ``cub.weights`` are pickled
numpy arrays ``(V, 300)`` float32 and ``(V,)`` float64; ``cub.pc`` a pickled torch tensor ``(300, 300)``; ``cub.all``
a pickled word counter; ``cub.vocab`` JSON ``{"w2i", "i2w"}``. Pickles are read by :func:`load_pickle`, which only
rebuilds numpy arrays, tensors and counters. These formats are read from MMVAE's code; no such file was available
to check against (``../shared/data/cub/README.md``): the tests write files the same way.
"""

from __future__ import annotations

import io
import json
import pickle
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from training.data.cub import EOS_ID, EXC_ID, SPECIAL_TOKENS, Vocabulary
from training.metrics.coherence import Reconstruct, SampleJoint

CCA_DIMS = 40
WEIGHT_A = 1e-3


@dataclass
class CCAProjection:
    """Means and projection matrices of both views: ``im_mean (D_i,)``, ``im_proj (D_i, k)``, ``emb_mean (D_e,)``,
    ``emb_proj (D_e, k)``."""

    im_mean: torch.Tensor
    im_proj: torch.Tensor
    emb_mean: torch.Tensor
    emb_proj: torch.Tensor


def load_cca_projection(folder: str | Path) -> CCAProjection:
    """MMVAE's ``images_mean.pt``, ``im_proj.pt``, ``emb_mean.pt``, ``emb_proj.pt`` from ``folder``."""
    folder = Path(folder)
    names = ("images_mean", "im_proj", "emb_mean", "emb_proj")
    tensors = [torch.load(folder / f"{n}.pt", map_location="cpu", weights_only=True).double() for n in names]
    return CCAProjection(*tensors)


def save_cca_projection(proj: CCAProjection, folder: str | Path) -> None:
    """Write the four tensors under MMVAE's file names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, t in zip(("images_mean", "im_proj", "emb_mean", "emb_proj"), _fields(proj), strict=True):
        torch.save(t, folder / f"{name}.pt")


def _fields(proj: CCAProjection) -> tuple[torch.Tensor, ...]:
    return proj.im_mean, proj.im_proj, proj.emb_mean, proj.emb_proj


def fit_cca(
    x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, k: int = CCA_DIMS, eps: float = 1e-12
) -> tuple[np.ndarray, CCAProjection]:
    """Two-view CCA as MMVAE computes it: the generalised eigenproblem ``A w = rho B w`` with ``A`` the cross
    covariances (off-diagonal blocks), ``B`` the block-diagonal within-view covariances (both ``/(N-1)``, ``eps`` on
    the diagonals); the ``k`` largest eigenvalues are the canonical correlations, their eigenvectors, each scaled to
    unit Euclidean length as scipy's ``eig`` returns them, split into the two projections.

    Returns (correlations ``(k,)``, the projection with the views' means).
    """
    x, y = (torch.as_tensor(np.asarray(v), dtype=torch.float64) for v in (x, y))
    n, dx, dy = x.shape[0], x.shape[1], y.shape[1]
    xc, yc = x - x.mean(0), y - y.mean(0)
    cxx, cyy, cxy = xc.T @ xc / (n - 1), yc.T @ yc / (n - 1), xc.T @ yc / (n - 1)
    a = torch.zeros(dx + dy, dx + dy, dtype=torch.float64)
    b = torch.zeros_like(a)
    a[:dx, dx:], a[dx:, :dx] = cxy, cxy.T
    b[:dx, :dx], b[dx:, dx:] = cxx, cyy
    a += eps * torch.eye(dx + dy, dtype=torch.float64)
    b += eps * torch.eye(dx + dy, dtype=torch.float64)
    values, vectors = scipy.linalg.eigh(a.numpy(), b.numpy())  # symmetric-definite: real, ascending
    top = np.argsort(values)[::-1][:k]
    w = vectors[:, top] / np.linalg.norm(vectors[:, top], axis=0)
    proj = CCAProjection(x.mean(0), torch.from_numpy(w[:dx].copy()), y.mean(0), torch.from_numpy(w[dx:].copy()))
    return values[top], proj


@torch.no_grad()
def cca_correlation(images: torch.Tensor, sentence_embs: torch.Tensor, proj: CCAProjection) -> float:
    """Mean over rows of the cosine similarity of the two centred, projected views."""
    im = (images.double() - proj.im_mean) @ proj.im_proj
    emb = (sentence_embs.double() - proj.emb_mean) @ proj.emb_proj
    return F.cosine_similarity(im, emb, dim=-1).mean().item()


def word_weights(counts: Mapping[str, int], vocab: Vocabulary, a: float = WEIGHT_A) -> np.ndarray:
    """``a / (a + count(w) / total)`` for every vocabulary word, ``<exc>`` weighted by the summed count of the
    words outside the vocabulary, ``<pad>`` and ``<eos>`` 0 (MMVAE ``fetch_weights``)."""
    total = sum(counts.values())
    weights = np.zeros(len(vocab))
    excluded = 0
    for word, count in counts.items():
        if word in vocab.w2i:
            weights[vocab.w2i[word]] = a / (a + count / total)
        else:
            excluded += count
    weights[EXC_ID] = a / (a + excluded / total)
    return weights


def embedding_table(word_vectors: Mapping[str, np.ndarray], vocab: Vocabulary, dim: int = 300) -> np.ndarray:
    """Rows by word id: -1, 0, +1 vectors for the three special tokens, then each word's vector (MMVAE
    ``fetch_emb``; there, FastText vectors, 300-d, window 3, trained 10 epochs on the training captions)."""
    rows = [np.full(dim, i - 1.0, dtype=np.float32) for i in range(len(SPECIAL_TOKENS))]
    rows += [np.asarray(word_vectors[w], dtype=np.float32) for w in vocab.i2w[len(SPECIAL_TOKENS) :]]
    return np.stack(rows)


def weighted_average(ids: torch.Tensor, emb: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per row of ``ids (N, T)``: the weighted word vectors up to and including the first ``<eos>`` (the whole row
    if there is none), summed and divided by the number of ids kept."""
    ids = ids.long()
    is_eos = ids == EOS_ID
    after_eos = (is_eos.int().cumsum(-1) - is_eos.int()) > 0  # positions past the first <eos>
    keep = (~after_eos).to(emb.dtype)
    weighted = emb[ids] * (weights[ids] * keep).unsqueeze(-1)
    return weighted.sum(1) / keep.sum(1, keepdim=True)


def principal_projector(embs: torch.Tensor) -> torch.Tensor:
    """``v v^T`` for v the first right singular vector of the centred rows (MMVAE ``fetch_pc``)."""
    _, _, vh = torch.linalg.svd(embs - embs.mean(0), full_matrices=False)
    v = vh[0].unsqueeze(-1)
    return v @ v.T


def sentence_embeddings(
    ids: torch.Tensor, emb: torch.Tensor, weights: torch.Tensor, projector: torch.Tensor
) -> torch.Tensor:
    """MMVAE's sentence vectors: :func:`weighted_average`, then the principal direction removed (``e - u e``)."""
    e = weighted_average(ids, emb, weights)
    return e - e @ projector.T


def as_ids(captions: torch.Tensor) -> torch.Tensor:
    """Caption ids ``(N, T)``; decoder logits ``(N, T, V)`` are turned into ids by argmax."""
    return captions.argmax(-1) if captions.is_floating_point() and captions.dim() == 3 else captions.long()


@dataclass
class SentenceEmbedder:
    """The fixed parts of the sentence embedding: word vectors ``(V, D)``, weights ``(V,)``, projector ``(D, D)``."""

    emb: torch.Tensor
    weights: torch.Tensor
    projector: torch.Tensor

    def __call__(self, captions: torch.Tensor) -> torch.Tensor:
        return sentence_embeddings(as_ids(captions).cpu(), self.emb, self.weights, self.projector)

    @classmethod
    def load(cls, folder: str | Path) -> SentenceEmbedder:
        """From MMVAE's ``cub.emb``, ``cub.weights`` and ``cub.pc`` in ``folder``."""
        folder = Path(folder)
        parts = [torch.as_tensor(load_pickle(folder / f"cub.{n}")).double() for n in ("emb", "weights", "pc")]
        return cls(*parts)


@torch.no_grad()
def cub_coherence(
    reconstruct: Reconstruct,
    sample_joint: SampleJoint,
    images: torch.Tensor,
    captions: torch.Tensor,
    embed: SentenceEmbedder,
    proj: CCAProjection,
    n_joint: int = 1000,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """MMVAE's four CUB numbers: ``ground_truth`` (the test pairs), ``image_to_caption`` (image vs the caption
    generated from it), ``caption_to_image`` (generated image vs caption), ``joint`` (``n_joint`` prior samples).

    ``reconstruct(observed) -> dict`` and ``sample_joint(n) -> dict`` use the modality names ``image`` and
    ``caption``; generated captions may be ids or logits. Cross scores are averaged over all test rows (MMVAE
    averaged per batch of 256 and skipped the last, incomplete batch).
    """
    sums = {"ground_truth": 0.0, "image_to_caption": 0.0, "caption_to_image": 0.0}
    n = images.shape[0]
    for i in range(0, n, batch_size):
        x, c = images[i : i + batch_size], captions[i : i + batch_size]
        xd, cd = (x, c) if device is None else (x.to(device), c.to(device))
        gen_c = reconstruct({"image": xd})["caption"].cpu()
        gen_x = reconstruct({"caption": cd})["image"].cpu()
        w = x.shape[0] / n
        sums["ground_truth"] += w * cca_correlation(x, embed(c), proj)
        sums["image_to_caption"] += w * cca_correlation(x, embed(gen_c), proj)
        sums["caption_to_image"] += w * cca_correlation(gen_x, embed(c), proj)
    joint = sample_joint(n_joint)
    sums["joint"] = cca_correlation(joint["image"].cpu(), embed(joint["caption"].cpu()), proj)
    return sums


class _SafeUnpickler(pickle.Unpickler):
    """Rebuilds only numpy arrays, torch tensors (their storages via ``torch.load(weights_only=True)``) and
    counters; anything else in the file is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("collections", "OrderedDict"),
        ("collections", "Counter"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return lambda b: torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)
        if name == "OrderedCounter":  # MMVAE's Counter subclass (cub.all)
            return Counter
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pickle(path: str | Path):
    """A pickled numpy array, torch tensor or word counter (MMVAE's ``cub.*`` files), loaded without running code."""
    with open(path, "rb") as f:
        return _SafeUnpickler(f).load()


def load_vocab_json(path: str | Path, counts: Counter | None = None) -> Vocabulary:
    """MMVAE's ``cub.vocab`` (JSON ``{"w2i": {...}, "i2w": {"0": "<exc>", ...}}``) as a :class:`Vocabulary`."""
    i2w = json.loads(Path(path).read_text())["i2w"]
    return Vocabulary([i2w[str(i)] for i in range(len(i2w))], counts if counts is not None else Counter())
