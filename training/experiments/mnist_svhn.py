"""MNIST-SVHN: train one model on MMVAE's class-matched pairs, score it with MMVAE's two LeNet oracles.

Metrics (paper section 4.2, MMVAE): ``joint`` = share of ``n_joint`` (10,000) prior samples whose decoded MNIST and
SVHN images the two oracles give the same digit; ``mnist_to_svhn`` = accuracy of the SVHN oracle on SVHN generated
from the MNIST image (one latent sample), ``svhn_to_mnist`` likewise. Selection: highest ``joint`` on the validation
pairs (MNIST test images >= 5000; ``joint`` itself uses no data), reported on the test pairs (MNIST test < 5000).

Files: ``DATA/mnist/mnist.npz``, ``DATA/mnist_svhn/`` (MMVAE's test pairing and oracles, shipped in
``../shared/data``) and SVHN's ``train_32x32.mat`` / ``test_32x32.mat`` in ``svhn_dir`` (default ``DATA/svhn``),
which are not on this machine: ``training.data.mnist_svhn.download_svhn(DIR)`` fetches them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.data.mnist import EvalSet
from training.data.mnist_svhn import MODALITIES, SVHN_URL, load_mnist_svhn, svhn_file
from training.data.semi import UnpairedRule
from training.experiments.common import model_device, require_files, run_experiment
from training.metrics.coherence import cross_coherence, joint_coherence
from training.oracles import MNIST_SVHN_ORACLE_FILES, load_mnist_svhn_oracle
from training.trainer import resolve_device

EXPERIMENT = "mnist-svhn"
SELECT_METRIC = "joint"
N_JOINT = 10000


def check_files(data_dir: str | Path, svhn_dir: str | Path | None = None) -> Path:
    """Raise a FileNotFoundError naming every missing input (with where to get it); returns the SVHN folder."""
    data_dir = Path(data_dir)
    svhn_dir = Path(svhn_dir) if svhn_dir is not None else data_dir / "svhn"
    files = {"MNIST": data_dir / "mnist" / "mnist.npz"}
    if not files["MNIST"].is_file() and (data_dir / "mnist.npz").is_file():
        files["MNIST"] = data_dir / "mnist.npz"
    for m in MODALITIES:
        files[f"{m} test pairing"] = data_dir / "mnist_svhn" / f"test-ms-{m}-idx.pt"
        files[f"{m} oracle"] = data_dir / "mnist_svhn" / MNIST_SVHN_ORACLE_FILES[m]
    for split in ("train", "test"):
        try:
            files[f"SVHN {split}"] = svhn_file(svhn_dir, split)
        except FileNotFoundError:
            files[f"SVHN {split}"] = svhn_dir / f"{split}_32x32.mat"
    require_files(
        files, "MNIST-SVHN",
        f"SVHN (train_32x32.mat, test_32x32.mat) comes from {SVHN_URL}: python3 -c \"from training.data.mnist_svhn "
        f"import download_svhn; download_svhn('{svhn_dir}')\"; MNIST and mnist_svhn/ are in the project's shared "
        "data folder (../shared/data) or training.data.mnist.download_mnist",
    )  # fmt: skip
    return svhn_dir


def coherence_score(oracles: dict[str, nn.Module], n_joint: int = N_JOINT) -> Any:
    """``score(model, eval_set)``: both cross-coherences (one latent sample) and the joint coherence."""

    def score(model: nn.Module, eval_set: EvalSet) -> dict[str, float]:
        out = cross_coherence(
            lambda observed: model.reconstruct(observed, sample=True),
            oracles, eval_set.data, eval_set.labels, device=model_device(model),
        )  # fmt: skip
        out["joint"] = joint_coherence(model.sample, oracles, n=n_joint)
        return out

    return score


def train_one(
    model_name: str,
    supervision: float,
    epochs: int | None = None,
    data_dir: str | Path = "../shared/data",
    out_dir: str | Path = "runs/mnist-svhn",
    device: str | torch.device = "auto",
    seed: int = 0,
    *,
    svhn_dir: str | Path | None = None,
    max_train: int | None = None,
    max_valid: int | None = None,
    max_test: int | None = None,
    n_joint: int = N_JOINT,
    pairing_seed: int = 0,
    unpaired: UnpairedRule = "all",
    lr: float | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    **model_overrides: Any,
) -> dict[str, Any]:
    """Train ``model_name`` on MNIST-SVHN at ``supervision`` (lr: the paper's best per model, 1e-4 for SVAE, 1e-3
    otherwise). ``max_train`` draws that many training pairs at random before the supervision split (the pairs are
    stored in class order), ``max_valid`` scores the first validation pairs only. Other keywords go to
    ``build_model``."""
    svhn_dir = check_files(data_dir, svhn_dir)
    data, evals = load_mnist_svhn(data_dir, supervision, seed, svhn_dir, pairing_seed, unpaired, max_train)
    target = resolve_device(device)
    oracles = {m: load_mnist_svhn_oracle(m, Path(data_dir) / "mnist_svhn").to(target) for m in MODALITIES}
    info = {"max_train": max_train, "n_train": data.n_objects, "n_pairs_total": data.n_available, "n_joint": n_joint,
            "unpaired": unpaired,
            "pairing_seed": pairing_seed}  # fmt: skip
    return run_experiment(
        EXPERIMENT, model_name, supervision, data=data, evals=evals, score=coherence_score(oracles, n_joint),
        select_metric=SELECT_METRIC, epochs=epochs, out_dir=out_dir, device=device, seed=seed, lr=lr,
        batch_size=batch_size, model_overrides=model_overrides, info=info, max_valid=max_valid, max_test=max_test,
        progress=progress,
    )  # fmt: skip
