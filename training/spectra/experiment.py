"""The spectra experiment (paper section 4.4) on MassBank: train one model at one supervision level, pick the best
epoch by validation retrieval, evaluate it on the held-out test structures, and write it as a model directory.

    train_one(model_name, supervision, epochs, data_dir, out_dir, device, seed, **overrides) -> dict

``model_name``: a registry VAE (``svae``, ``vaevae``, ``vaevae-star`` ...) or ``mlp`` (the feed-forward baseline).
Supervision is by structure: a share of the training structures is identified (all their spectra are paired with
their fingerprint); the other training structures give unpaired spectra and unpaired fingerprints (see
:func:`training.spectra.data.semi_supervised_data`).

Sizes: ``size="small"`` (default) is the configuration that trains on two CPU cores in minutes and ships as the
default model: spectrum encoder n_bins -> 128 -> 128 (BatchNorm, ReLU; n_bins = 11,000 at the default 0.1 Da bins,
1,100 in the shipped model), fingerprint encoder 2,215 -> 256 -> 256, decoders mirrored, latent 64;
``size="paper"`` is Tables A.8/A.9 with latent 300 (about 300 M parameters for SVAE: a GPU job). Adam, lr 1e-3,
batch 256 by default (the paper: 1e-4, 250, 140 epochs).

Files in ``out_dir``: the trainer's (``metrics.json`` per epoch, ``best.pt``, ``last.pt`` ...), ``split.json``,
``model/`` (the best epoch as a model directory, usable with ``--model``), ``test_ranks.json`` (the true
structure's rank per test query and protocol) and ``result.json`` (what is returned).

Every result carries the spread of its test top-k rates over a bootstrap of the test structures (``spread``), and
the test metrics of the model's prediction averaged with the library-search baseline's (``mixed``, beyond the
paper; the weight chosen on validation). :func:`library_search_run` writes the library-search baseline's result in
the same layout (model ``library-search``).
"""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.featurize.binning import BinningSpec
from models.featurize.fingerprints import DEFAULT_FINGERPRINT_SPEC
from models.spectra_model import SpectraModel, resolve_device
from training.checkpoint import load_weights, write_json
from training.spectra.baseline import random_ranking_report
from training.spectra.data import (
    MASSBANK_FILE,
    SpectraData,
    load_spectra_data,
    paired_rows,
    read_unpaired_spectra,
    semi_supervised_data,
)
from training.spectra.dataset import read_split, write_split
from training.spectra.evaluate import (
    DEFAULT_PROTOCOLS,
    bootstrap_top_k,
    candidate_counts,
    flat_metrics,
    pool_retrieval,
)
from training.spectra.library_search import DEFAULT_K, library_search_probs, mix_predictions
from training.spectra.structure_library import library_fingerprints
from training.trainer import seed_everything, train

SIZES: dict[str, dict[str, Any]] = {
    "small": {"latent_dim": 64, "spectrum_hidden": (128, 128), "fingerprint_hidden": (256, 256)},
    "paper": {"latent_dim": 300},
}
DEFAULT_EPOCHS = 30
DEFAULT_LR = 1e-3
DEFAULT_BATCH_SIZE = 256
SELECT_METRIC = "nearest256_top10_rate"
RESULT_FILE = "result.json"
RANKS_FILE = "test_ranks.json"
LIBRARY_SEARCH = "library-search"
MIX_WEIGHTS = (0.25, 0.5, 0.75)  # library-search weights tried on validation for the ``mixed`` metrics


def _network_sizes(model_name: str, size: str, overrides: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, not {size!r}")
    sizes = {**SIZES[size], **overrides}
    latent_dim = int(sizes.pop("latent_dim"))
    if model_name == "mlp":  # the baseline has the spectrum encoder body only
        sizes = {k: v for k, v in sizes.items() if k == "spectrum_hidden"}
    return latent_dim, sizes


def evaluate_rows(
    model: SpectraModel, data: SpectraData, rows: np.ndarray
) -> tuple[dict[str, dict[str, Any]], np.ndarray]:
    """Pool retrieval reports (every protocol) of the records ``rows``, and the predictions."""
    probs = model.predict_features(data.features[rows])
    reports = pool_retrieval(probs, data.structure[rows], data.query_mass[rows], data.structures, DEFAULT_PROTOCOLS)
    return reports, probs


def load_data(
    data_dir: str | Path,
    binning: BinningSpec,
    fingerprint_spec: str,
    bit_rates: tuple[float, float] | None,
    max_spectra: int | None = None,
) -> SpectraData:
    """MassBank featurized, with the fingerprint bits of ``fingerprint_spec`` that fire in ``bit_rates`` (min, max)
    of the training structures (None: every bit)."""
    data = load_spectra_data(data_dir, binning=binning, fingerprint_spec=fingerprint_spec, limit=max_spectra)
    return data if bit_rates is None else data.select_bits(*bit_rates)


def test_spread(reports: dict[str, dict[str, Any]], groups: np.ndarray, seed: int) -> dict[str, dict[str, float]]:
    """Bootstrap spread (:func:`bootstrap_top_k`, over test structures) of every protocol's top-k rates; the
    reports must hold the per-query ``ranks``."""
    return {name: bootstrap_top_k(np.asarray(r["ranks"]), groups, seed=seed) for name, r in reports.items()}


def _strip_ranks(reports: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: {k: v for k, v in r.items() if k != "ranks"} for name, r in reports.items()}


def _library_probs(data: SpectraData, supervision: float, seed: int, rows: np.ndarray) -> np.ndarray:
    library = paired_rows(data, supervision, seed)
    bits = data.structures.bits[data.structure[library]]
    return library_search_probs(data.features[rows], data.features[library], bits, DEFAULT_K)


def random_reports(data: SpectraData, rows: np.ndarray) -> dict[str, dict[str, Any]]:
    """The random-ranking baseline's expected reports for the queries ``rows``, per protocol."""
    return {
        p.name: {
            **random_ranking_report(candidate_counts(data.structure[rows], data.query_mass[rows], data.structures, p)),
            "protocol": p.describe(),
        }
        for p in DEFAULT_PROTOCOLS
    }


def sample_rows(rows: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """A seeded random sample of ``n`` of ``rows``, sorted (all of them when ``n`` is None or not smaller): the file
    groups records by contributor, so its first rows are no fair sample."""
    if n is None or n >= len(rows):
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def train_one(
    model_name: str,
    supervision: float,
    epochs: int | None = None,
    data_dir: str | Path = "../shared/data",
    out_dir: str | Path = "runs/spectra/run",
    device: str | torch.device = "auto",
    seed: int = 0,
    *,
    size: str = "small",
    lr: float | None = None,
    batch_size: int | None = None,
    max_spectra: int | None = None,
    max_train: int | None = None,
    max_valid: int | None = None,
    max_test: int | None = None,
    unpaired_mgf: Sequence[str | Path] = (),
    fingerprint_spec: str = DEFAULT_FINGERPRINT_SPEC,
    binning: BinningSpec | dict[str, Any] | None = None,
    split_file: str | Path | None = None,
    model_dir: str | Path | None = None,
    model_name_in_card: str | None = None,
    weights_dtype: str = "float16",
    command: str | None = None,
    progress: bool = True,
    bit_rates: tuple[float, float] | None = None,
    library_molecules: int = 0,
    patience: int | None = None,
    time_limit_s: float | None = None,
    save_last: bool = True,
    data: SpectraData | None = None,
    mix: bool = True,
    **network_overrides: Any,
) -> dict[str, Any]:
    """Train ``model_name`` on MassBank at ``supervision``; returns (and writes to ``out_dir/result.json``) the
    test metrics of the epoch with the best validation ``nearest256_top10_rate``.

    Args:
        epochs, lr, batch_size: default 30, 1e-3, 256.
        data_dir: the folder holding ``massbank/massbank-pos-ms2.mgf.gz``.
        max_spectra: read only the first N spectra of the file (quick runs and tests).
        max_train, max_valid, max_test: a seeded random sample of N training spectra to train on, of N validation
            spectra to evaluate each epoch, of N test spectra to evaluate at the end (default: all of each).
        unpaired_mgf: MGF files of unidentified spectra added to the unpaired spectra.
        split_file: a split written by :func:`~training.spectra.dataset.write_split` to use instead of the default
            one (e.g. the CASMI 2016 hold-out of :mod:`training.spectra.casmi2016`).
        model_dir: also write the best model directory there (e.g. ``models/default``), with its card.
        command: the command line that ran this, recorded in the result and the card.
        bit_rates: keep only the fingerprint bits firing in (min, max) of the training structures (e.g.
            (0.005, 0.995)); the selection becomes part of the model's fingerprint spec. None: every bit.
        library_molecules: add this many unpaired fingerprints of MOSES molecules (a structure library without
            spectra; :mod:`training.spectra.structure_library`), validation and test structures excluded.
        patience: stop after this many epochs without a better validation score (None: train every epoch).
        time_limit_s, save_last: the trainer's wall-time budget and whether it writes ``last.pt`` (see
            :func:`training.trainer.train`).
        mix: also measure the prediction averaged with the library search's (``mixed``; None when False).
        data: MassBank already loaded by :func:`load_data` (its binning and fingerprint are then used; the
            ``binning``, ``fingerprint_spec``, ``bit_rates`` and ``max_spectra`` arguments are only recorded).
        network_overrides: sizes for ``build_model`` (``spectrum_hidden`` ...) over those of ``size``.

    Returned keys: experiment, model, supervision, seed, epochs, best_epoch, select_metric, metrics (test, flat),
    valid_metrics, test (full reports per candidate protocol), random (the random baseline on the same test
    queries), data (counts), network, lr, batch_size, device, machine, times.
    """
    start = time.perf_counter()
    epochs = DEFAULT_EPOCHS if epochs is None else epochs
    lr = DEFAULT_LR if lr is None else lr
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    out_dir = Path(out_dir)
    device = resolve_device(device)
    binning = BinningSpec.from_dict(binning) if isinstance(binning, dict) else (binning or BinningSpec())

    if data is None:
        data = load_data(data_dir, binning, fingerprint_spec, bit_rates, max_spectra)
    if split_file is not None:
        data = replace(data, split=read_split(split_file, data.records))
    binning = data.binning
    data = replace(data, split=replace(data.split, train=sample_rows(data.split.train, max_train, seed)))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_split(data.split, out_dir / "split.json", source=str(MASSBANK_FILE))
    extra = read_unpaired_spectra(unpaired_mgf, binning) if unpaired_mgf else None
    library_bits = None
    if library_molecules and model_name != "mlp":
        unseen = [b for part in ("val", "test") for b in data.split.blocks[part]]
        library_bits = library_fingerprints(
            data_dir, data.fingerprint_spec, library_molecules, seed=0, exclude_blocks=unseen
        )
    semi, semi_counts = semi_supervised_data(
        data, supervision, seed, extra_unpaired=extra[0] if extra else None, extra_fingerprints=library_bits
    )
    if extra:
        semi_counts["unpaired_user_spectra_rejected"] = extra[1]

    latent_dim, sizes = _network_sizes(model_name, size, network_overrides)
    seed_everything(seed)
    model = SpectraModel.create(
        model_name, binning=binning, fingerprint_spec=data.fingerprint_spec, latent_dim=latent_dim,
        name=model_name_in_card or f"{model_name}-s{supervision:g}", device=device, **sizes,
    )  # fmt: skip
    valid_rows = sample_rows(data.split.val, max_valid, seed)

    def evaluate(_: torch.nn.Module) -> dict[str, float]:
        return flat_metrics(evaluate_rows(model, data, valid_rows)[0])

    result = train(
        model.model, semi, epochs=epochs, batch_size=batch_size, lr=lr, out_dir=out_dir, device=device, seed=seed,
        evaluate=evaluate, select_metric=SELECT_METRIC, progress=progress, patience=patience,
        time_limit_s=time_limit_s, save_last=save_last,
    )  # fmt: skip

    t0 = time.perf_counter()
    load_weights(model.model, result.best_path)
    model.model.eval()
    test_rows = sample_rows(data.split.test, max_test, seed)
    test_reports = pool_retrieval(
        model.predict_features(data.features[test_rows]), data.structure[test_rows], data.query_mass[test_rows],
        data.structures, DEFAULT_PROTOCOLS, with_ranks=True,
    )  # fmt: skip
    mixed = mixed_metrics(model, data, supervision, seed, valid_rows, test_rows) if mix else None
    test_time = time.perf_counter() - t0
    write_json({name: r["ranks"] for name, r in test_reports.items()}, out_dir / RANKS_FILE)

    record: dict[str, Any] = {
        "experiment": "spectra",
        "model": model_name,
        "supervision": supervision,
        "seed": seed,
        "epochs": epochs,
        "best_epoch": result.best_epoch,
        "select_metric": f"valid {SELECT_METRIC}",
        "metrics": flat_metrics(test_reports),
        "spread": test_spread(test_reports, data.structure[test_rows], seed),
        "valid_metrics": result.best_metrics,
        "test": _strip_ranks(test_reports),
        "mixed": mixed,
        "random": random_reports(data, test_rows),
        "n_valid": len(valid_rows),
        "n_test": len(test_rows),
        "data": {
            "file": str(MASSBANK_FILE),
            "sha256": _sha256(Path(data_dir) / MASSBANK_FILE),
            **data.summary(),
            "semi_supervision": semi_counts,
            "fingerprint_spec": data.fingerprint_spec.text,
            "binning": binning.to_dict(),
        },
        "network": {"size": size, "latent_dim": latent_dim, **model.overrides},
        "num_parameters": model.num_parameters(),
        "lr": lr,
        "batch_size": batch_size,
        "device": str(device),
        "machine": f"{platform.system()} {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread(s), device {_device_name(device)}",
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "command": command,
        "train_time_s": round(sum(r["time_s"] for r in result.history), 1),
        "eval_time_s": round(sum(r["eval_time_s"] for r in result.history) + test_time, 1),
        "wall_time_s": round(time.perf_counter() - start, 1),
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "max_spectra": max_spectra,
        "max_train": max_train,
        "max_valid": max_valid,
        "max_test": max_test,
        "split_file": None if split_file is None else str(split_file),
        "bit_rates": list(bit_rates) if bit_rates else None,
        "library_molecules": library_molecules,
        "patience": patience,
        "time_limit_s": time_limit_s,
        "stopped_at_epoch": len(result.history),
    }
    model.card = model_card(record)
    model.save(out_dir / "model", weights_dtype=weights_dtype)
    if model_dir is not None:
        model.save(model_dir, weights_dtype=weights_dtype)
    write_json(record, out_dir / RESULT_FILE)
    return record


def _device_name(device: torch.device) -> str:
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def mixed_metrics(
    model: SpectraModel, data: SpectraData, supervision: float, seed: int, valid_rows: np.ndarray, test_rows: np.ndarray
) -> dict[str, Any]:
    """Beyond the paper: the model's bit probabilities averaged with the library search's (same paired library).
    The library-search weight is the one of :data:`MIX_WEIGHTS` with the best validation ``SELECT_METRIC``;
    returns it, the validation scores of every weight, the test metrics and their bootstrap spread."""

    def reports(rows: np.ndarray, weight: float, with_ranks: bool = False) -> dict[str, dict[str, Any]]:
        probs = mix_predictions(model.predict_features(data.features[rows]), search[id(rows)], weight)
        return pool_retrieval(probs, data.structure[rows], data.query_mass[rows], data.structures,
                              DEFAULT_PROTOCOLS, with_ranks=with_ranks)  # fmt: skip

    search = {id(rows): _library_probs(data, supervision, seed, rows) for rows in (valid_rows, test_rows)}
    valid = {w: flat_metrics(reports(valid_rows, w))[SELECT_METRIC] for w in MIX_WEIGHTS}
    weight = max(MIX_WEIGHTS, key=lambda w: valid[w])
    test = reports(test_rows, weight, with_ranks=True)
    return {
        "library_weight": weight,
        "valid": {f"{w:g}": v for w, v in valid.items()},
        "metrics": flat_metrics(test),
        "spread": test_spread(test, data.structure[test_rows], seed),
    }


def library_search_run(
    supervision: float,
    data: SpectraData,
    out_dir: str | Path,
    seed: int = 0,
    max_test: int | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """The library-search baseline at ``supervision`` (library: the identified training structures' spectra at
    this seed) on the test queries, as a result record like :func:`train_one`'s (written to ``result.json``)."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    test_rows = sample_rows(data.split.test, max_test, seed)
    reports = pool_retrieval(
        _library_probs(data, supervision, seed, test_rows), data.structure[test_rows], data.query_mass[test_rows],
        data.structures, DEFAULT_PROTOCOLS, with_ranks=True,
    )  # fmt: skip
    write_json({name: r["ranks"] for name, r in reports.items()}, out_dir / RANKS_FILE)
    library = paired_rows(data, supervision, seed)
    record = {
        "experiment": "spectra",
        "model": LIBRARY_SEARCH,
        "supervision": supervision,
        "seed": seed,
        "epochs": 0,
        "best_epoch": None,
        "metrics": flat_metrics(reports),
        "spread": test_spread(reports, data.structure[test_rows], seed),
        "test": _strip_ranks(reports),
        "random": random_reports(data, test_rows),
        "n_test": len(test_rows),
        "data": {
            "fingerprint_spec": data.fingerprint_spec.text,
            "binning": data.binning.to_dict(),
            "library_spectra": int(len(library)),
            "library_structures": int(len(np.unique(data.structure[library]))),
            "k": DEFAULT_K,
        },
        "network": {"k": DEFAULT_K, "similarity": "cosine of the binned spectra"},
        "num_parameters": 0,
        "command": command,
        "train_time_s": 0.0,
        "wall_time_s": round(time.perf_counter() - start, 1),
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(record, out_dir / RESULT_FILE)
    return record


def model_card(record: dict[str, Any]) -> dict[str, Any]:
    """The model card of a trained run: what it was trained on and how, and its test metrics."""
    data = record["data"]
    return {
        "description": (
            f"{record['model'].upper()} spectrum -> fingerprint model trained on MassBank positive-mode MS/MS spectra "
            f"(supervision {record['supervision']:g}: {data['semi_supervision']['paired_structures']} identified "
            f"training structures). It predicts `{data['fingerprint_spec']}` fingerprint bit probabilities from a "
            "binned spectrum; candidates are ranked by the cross-entropy between those and their bits."
        ),
        "data": {
            "source": "MassBank (github.com/MassBank/MassBank-data, commit 13484d41, 2025-05-05), positive-mode MS2 "
            "records with SMILES under CC BY, CC BY-SA, CC0 or dl-de/by-2-0 licenses; cite MassBank (Horai et al. "
            "2010)",
            "file": data["file"],
            "sha256": data["sha256"],
            "spectra_used": data["used_spectra"],
            "structures_used": data["used_structures"],
            "rejected": {"invalid_smiles": data["rejected"], "not_featurizable": data["not_featurizable"]},
        },
        "split": {
            "method": "by first InChIKey block, sha256-ordered, 80/10/10 of structures, seed 0"
            if record.get("split_file") is None
            else f"by first InChIKey block, read from {record['split_file']}",
            "counts": data["split"],
        },
        "supervision": {"level": record["supervision"], **data["semi_supervision"]},
        "fingerprint_spec": data["fingerprint_spec"],
        "binning": data["binning"],
        "training": {
            "model": record["model"],
            "network": record["network"],
            "parameters": record["num_parameters"],
            "epochs": record["epochs"],
            "best_epoch": record["best_epoch"],
            "stopped_at_epoch": record.get("stopped_at_epoch"),
            "unpaired_library_molecules": record.get("library_molecules", 0),
            "selection": record["select_metric"],
            "optimizer": f"Adam, lr {record['lr']:g}, batch {record['batch_size']}",
            "seed": record["seed"],
            "wall_time_s": record["wall_time_s"],
            "machine": record["machine"],
            "command": record["command"],
        },
        "test_metrics": {name: _short(r) for name, r in record["test"].items()},
        "test_spread_bootstrap_over_test_structures": record.get("spread"),
        "random_baseline_test": {name: _short(r) for name, r in record["random"].items()},
    }


def _short(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "top1_rate", "top5_rate", "top10_rate", "top20_rate", "mean_rank", "median_rank",
            "n_candidates_mean", "mean_bit_auc", "mean_tanimoto", "protocol")  # fmt: skip
    return {k: (round(report[k], 4) if isinstance(report[k], float) else report[k]) for k in keys if k in report}
