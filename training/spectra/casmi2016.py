"""CASMI 2016 end to end on the challenge spectra that MassBank hosts (accessions ``MSBNK-CASMI_2016-*``).

    python -m training.spectra.casmi2016 --data ../shared/data --models mlp svae vaevae --seeds 0 1 2

1. The split: the project's default split by first InChIKey block (seed 0, 80/10/10), with every CASMI 2016
   structure moved out of training and validation into test, so that no spectrum of a challenge structure (from
   CASMI or any other MassBank contributor) is trained on or used for model selection
   (:func:`casmi_holdout_split`, written to ``<runs>/casmi2016-split.json``).
2. Training: :func:`training.spectra.experiment.train_one` with that split, one run per model and seed.
3. Evaluation: every CASMI 2016 spectrum is a query; its candidates are the structures of its molecular formula in
   the structure library (MassBank + MOSES, :mod:`training.spectra.library`); the formula protocol of
   :mod:`training.spectra.formula_protocol`, with the spectrum-blind baseline (mean fingerprint of the training
   structures of the split).
4. Report: ``reports/casmi2016.{json,md,png}`` via :mod:`training.spectra.casmi_report` (Figure 11's top-k
   curves, one per model, mean over seeds with the spread).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.featurize.binning import BinningSpec
from models.spectra_model import SpectraModel
from training.spectra.data import SpectraData, load_spectra_data
from training.spectra.dataset import PARTS, Split, _split_from_blocks, read_split, split_by_structure, write_split
from training.spectra.experiment import RESULT_FILE, train_one
from training.spectra.formula_eval import evaluate_formula_rows
from training.spectra.library import StructureLibrary, open_library

CASMI2016_PREFIX = "MSBNK-CASMI_2016-"
SPLIT_FILE = "casmi2016-split.json"
BIN_WIDTH = 1.0
EPOCHS = 30
MAX_VALID = 500  # validation spectra scored per epoch: the scoring, not the training, dominates an epoch on CPU
MAX_TEST = 2000


def casmi_rows(data: SpectraData, prefix: str = CASMI2016_PREFIX) -> np.ndarray:
    """Record indices of the CASMI challenge spectra (MassBank accession starting with ``prefix``)."""
    return np.array([i for i, r in enumerate(data.records) if r.title.startswith(prefix)], dtype=np.int64)


def casmi_holdout_split(base: Split, blocks: Sequence[str], keys: Sequence[str]) -> Split:
    """``base`` with the structures ``blocks`` moved from training and validation into test.

    Args:
        base: a split of the records whose first InChIKey blocks are ``keys`` (one per record).
        blocks: the structures to hold out (first InChIKey blocks).
    """
    held = set(blocks)
    parts = {name: [b for b in base.blocks[name] if b not in held] for name in PARTS}
    parts["test"] = sorted(set(base.blocks["test"]) | (held & set(keys)))
    return _split_from_blocks(list(keys), parts, base.seed, base.fractions)


def write_holdout_split(data: SpectraData, path: Path) -> dict[str, int]:
    """Write the CASMI 2016 hold-out split of ``data`` (default split seed 0) to ``path``; returns counts."""
    keys = [r.inchikey_block for r in data.records]
    rows = casmi_rows(data)
    blocks = sorted({keys[i] for i in rows})
    base = split_by_structure(data.records)
    split = casmi_holdout_split(base, blocks, keys)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")  # replaced in one step: runs training at the same time read this file
    write_split(split, tmp, source="massbank/massbank-pos-ms2.mgf.gz, CASMI 2016 structures held out")
    tmp.replace(path)
    moved = {name: len(set(base.blocks[name]) & set(blocks)) for name in ("train", "val")}
    return {
        "casmi_spectra": len(rows),
        "casmi_structures": len(blocks),
        "casmi_structures_in_default_train": moved["train"],
        "casmi_structures_in_default_val": moved["val"],
        "train_spectra": len(split.train),
        "train_structures": len(split.blocks["train"]),
        "other_spectra_of_casmi_structures_held_out": int(np.isin(keys, blocks).sum()) - len(rows),
    }


def evaluate_run(
    run_dir: Path, data: SpectraData, split: Split, library: StructureLibrary, rows: np.ndarray
) -> dict[str, Any]:
    """The formula protocol on the records ``rows`` for the model in ``run_dir/model`` (and the blind baseline)."""
    return evaluate_formula_rows(SpectraModel.load(run_dir / "model", device="cpu"), data, split, rows, library)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="CASMI 2016 (MassBank-hosted spectra): train, evaluate, report")
    parser.add_argument("--data", default="../shared/data", help="folder holding massbank/ and molecules/")
    parser.add_argument("--runs", default="runs/casmi2016", help="split, trainer files and per-run results")
    parser.add_argument("--library-cache", default="runs/library", help="structure library index and cache")
    parser.add_argument("--models", nargs="+", default=["mlp", "svae", "vaevae"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--supervision", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--bin-width", type=float, default=BIN_WIDTH, help="spectrum bin width, Da")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-valid", type=int, default=MAX_VALID, help="validation spectra scored per epoch")
    stage = parser.add_mutually_exclusive_group()
    stage.add_argument("--train-only", action="store_true", help="train the missing runs, evaluate nothing")
    stage.add_argument("--evaluate-only", action="store_true",
                       help="train nothing: report the runs on disk, list the missing ones")  # fmt: skip
    parser.add_argument("--out-dir", default="reports", help="where casmi2016.{json,md,png} go")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python -m training.spectra.casmi2016 " + shlex.join(sys.argv[1:] if argv is None else argv)
    runs = Path(args.runs)
    binning = BinningSpec(bin_width=args.bin_width)
    data = load_spectra_data(args.data, binning=binning)
    split_path = runs / SPLIT_FILE
    split_counts = write_holdout_split(data, split_path)
    wanted = [(m, seed, runs / f"{m}-s{args.supervision:g}-seed{seed}") for m in args.models for seed in args.seeds]
    for model_name, seed, run_dir in wanted:
        if (run_dir / RESULT_FILE).exists() or args.evaluate_only:
            continue
        train_one(
            model_name, args.supervision, args.epochs, args.data, run_dir, "cpu", seed, binning=binning,
            split_file=split_path, max_valid=args.max_valid, max_test=MAX_TEST, command=command,
        )  # fmt: skip
    if args.train_only:
        return
    from training.spectra.casmi_report import write_casmi2016_report

    start = time.perf_counter()
    split = read_split(split_path, data.records)
    library = open_library(args.data, args.library_cache)
    rows = casmi_rows(data)
    evaluations = {
        (model_name, seed): evaluate_run(run_dir, data, split, library, rows)
        for model_name, seed, run_dir in wanted
        if (run_dir / RESULT_FILE).exists()
    }
    missing = [run_dir.name for _, _, run_dir in wanted if not (run_dir / RESULT_FILE).exists()]
    write_casmi2016_report(
        Path(args.out_dir), evaluations, runs=runs, command=command, split_counts=split_counts, missing_runs=missing,
        library=library.manifest(), supervision=args.supervision, eval_seconds=time.perf_counter() - start,
    )  # fmt: skip


if __name__ == "__main__":
    main()
