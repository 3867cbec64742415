"""CUB image-captions: train one model on (ResNet-101 feature, caption) pairs, score it by CCA correlation.

Metrics (paper section 4.3, MMVAE's ``analyse_cub``; :func:`training.metrics.cca.cub_coherence`): ``ground_truth``
(the data's own pairs), ``image_to_caption`` (image vs the caption generated from it), ``caption_to_image``
(generated image features vs the caption), ``joint`` (``n_joint`` = 1000 prior samples). Generated image features
are scored as they are (MMVAE's nearest-neighbour image lookup only matters for showing pictures). Selection:
highest ``joint`` on the validation captions (odd-numbered test images), reported on the test captions (even ones).

Files (MMVAE's layout; only ``cub/text_testclasses.txt`` is on this machine): under ``DATA/cub/`` the caption
files ``text_trainvalclasses.txt``, ``text_testclasses.txt`` and ``resnet101_2048/{train,test}.ft`` (MMVAE's
``cub.zip`` plus its feature extraction), and in ``cca_dir`` (default ``DATA/cub/cca_emb``) the CCA / FastText
files of MMVAE's ``CCA_emb.zip``: ``cub.emb``, ``cub.weights``, ``cub.pc``, ``images_mean.pt``, ``im_proj.pt``,
``emb_mean.pt``, ``emb_proj.pt``. Both archives are linked from the MMVAE README (github.com/iffsid/mmvae).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.data.cub import FEATURE_FILES, TEXT_FILES, cub_dir, load_cub
from training.data.mnist import EvalSet
from training.data.semi import UnpairedRule
from training.experiments.common import model_device, require_files, run_experiment
from training.metrics.cca import CCAProjection, SentenceEmbedder, cub_coherence, load_cca_projection

EXPERIMENT = "cub-captions"
SELECT_METRIC = "joint"
N_JOINT = 1000
CCA_FILES = ("cub.emb", "cub.weights", "cub.pc", "images_mean.pt", "im_proj.pt", "emb_mean.pt", "emb_proj.pt")


def check_files(data_dir: str | Path, cca_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Raise a FileNotFoundError naming every missing input (with where to get it); returns (cub folder, CCA
    folder)."""
    folder = cub_dir(data_dir)
    cca = Path(cca_dir) if cca_dir is not None else folder / "cca_emb"
    files = {f"{split} captions": folder / name for split, name in TEXT_FILES.items()}
    files.update({f"{split} image features": folder / name for split, name in FEATURE_FILES.items()})
    files.update({f"CCA/FastText {name}": cca / name for name in CCA_FILES})
    require_files(
        files, "CUB image-captions",
        "The captions and images come in MMVAE's cub.zip, the CCA/FastText files in its CCA_emb.zip (both linked "
        "from github.com/iffsid/mmvae's README); resnet101_2048/{train,test}.ft are torch-saved (n_images, 2048) "
        "tensors of torchvision's ImageNet ResNet-101 average-pool features (see training/data/cub.py).",
    )  # fmt: skip
    return folder, cca


def cca_score(embed: SentenceEmbedder, proj: CCAProjection, n_joint: int = N_JOINT) -> Any:
    """``score(model, eval_set)``: :func:`cub_coherence` with one latent sample per reconstruction."""

    def score(model: nn.Module, eval_set: EvalSet) -> dict[str, float]:
        return cub_coherence(
            lambda observed: model.reconstruct(observed, sample=True), model.sample,
            eval_set.data["image"], eval_set.data["caption"], embed, proj, n_joint=n_joint, device=model_device(model),
        )  # fmt: skip

    return score


def train_one(
    model_name: str,
    supervision: float,
    epochs: int | None = None,
    data_dir: str | Path = "../shared/data",
    out_dir: str | Path = "runs/cub-captions",
    device: str | torch.device = "auto",
    seed: int = 0,
    *,
    cca_dir: str | Path | None = None,
    max_train: int | None = None,
    max_valid: int | None = None,
    max_test: int | None = None,
    n_joint: int = N_JOINT,
    unpaired: UnpairedRule = "all",
    lr: float | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    **model_overrides: Any,
) -> dict[str, Any]:
    """Train ``model_name`` on CUB captions at ``supervision`` (the caption networks sized to the vocabulary built
    from the training captions). ``max_train`` draws that many training rows at random, ``max_valid`` scores the
    first validation rows only. Other keywords go to ``build_model`` (e.g. ``image_scale``)."""
    _, cca = check_files(data_dir, cca_dir)
    data, evals, vocab = load_cub(data_dir, supervision, seed, unpaired, max_train)
    embed, proj = SentenceEmbedder.load(cca), load_cca_projection(cca)
    if embed.emb.shape[0] != len(vocab):
        raise ValueError(
            f"{cca / 'cub.emb'} has {embed.emb.shape[0]} word vectors but the training captions give a vocabulary of "
            f"{len(vocab)} words: the CCA files belong to other captions"
        )
    info = {"max_train": max_train, "n_train": data.n_objects, "n_rows_total": data.n_available, "n_joint": n_joint,
            "unpaired": unpaired,
            "vocab_size": len(vocab)}  # fmt: skip
    return run_experiment(
        EXPERIMENT, model_name, supervision, data=data, evals=evals, score=cca_score(embed, proj, n_joint),
        select_metric=SELECT_METRIC, epochs=epochs, out_dir=out_dir, device=device, seed=seed, lr=lr,
        batch_size=batch_size, model_overrides={"vocab_size": len(vocab), **model_overrides}, info=info,
        max_valid=max_valid, max_test=max_test, progress=progress,
    )  # fmt: skip
