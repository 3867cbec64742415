"""``msvae evaluate-formula`` (training/spectra/formula_eval.py) on the first records of the real MassBank file,
written in the shared data layout with a small MOSES-style library beside them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from models.featurize.binning import BinningSpec
from models.spectra_model import SpectraModel
from training.spectra.dataset import load_massbank, split_by_structure
from training.spectra.formula_eval import evaluate_model_dirs
from training.spectra.library import open_library

N_RECORDS = 400


@pytest.fixture(scope="module")
def data_dir(shared_data, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shared")
    (folder / "massbank").mkdir()
    blocks, block = [], []
    with gzip.open(shared_data / "massbank" / "massbank-pos-ms2.mgf.gz", "rt") as f:
        for line in f:
            block.append(line)
            if line.startswith("END IONS"):
                blocks.append("".join(block))
                block = []
                if len(blocks) == N_RECORDS:
                    break
    with gzip.open(folder / "massbank" / "massbank-pos-ms2.mgf.gz", "wt") as f:
        f.write("\n".join(blocks))
    (folder / "molecules" / "moses").mkdir(parents=True)
    for name in ("train", "test", "test_scaffolds"):
        with gzip.open(folder / "molecules" / "moses" / f"{name}.csv.gz", "wt") as f:
            f.write("SMILES\nCCO\n")
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("run") / "model"
    model = SpectraModel.create("mlp", binning=BinningSpec(bin_width=1.0), fingerprint_spec="maccs", latent_dim=8,
                                spectrum_hidden=(16,))  # fmt: skip
    model.card = {"supervision": {"level": 0.5}}
    model.save(path)
    return path


def test_rows_in_the_spectra_report_layout(data_dir, model_dir, tmp_path):
    library = open_library(data_dir, tmp_path / "cache", workers=1)
    doc = evaluate_model_dirs([model_dir], data_dir, library)
    records = load_massbank(data_dir / "massbank" / "massbank-pos-ms2.mgf.gz")
    test_rows = split_by_structure(records).test  # no split.json beside the model: the default split
    assert doc["queries"] == len(test_rows) > 0 and doc["part"] == "test"
    (row,) = doc["results"]
    assert row["model"] == "mlp" and row["supervision"] == 0.5
    metrics = row["metrics"]
    assert 0 <= metrics["formula_top1_rate"] <= metrics["formula_top10_rate"] <= 1
    # every true structure is a MassBank structure, so the library holds it (none added)
    assert metrics["formula_true_added"] == 0
    formulas = {records[i].formula for i in test_rows}
    sizes = [len(library.formula_candidates(f, "maccs")) for f in formulas]
    assert 1 <= metrics["formula_n_candidates_mean"] <= max(sizes)
    assert doc["spectrum_blind"]["model"] == "spectrum-blind"
    assert len(row["formula_topk_counts"]) == 20 and np.all(np.diff(row["formula_topk_counts"]) >= 0)


def test_cli(data_dir, model_dir, tmp_path, capsys):
    out = tmp_path / "f.json"
    argv = ["evaluate-formula", str(model_dir), "--data", str(data_dir), "--library-cache", str(tmp_path / "c"),
            "--max-queries", "5", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["queries"] == 5 and "formula_top1_rate" in doc["results"][0]["metrics"]
    assert doc["command"].startswith("msvae evaluate-formula ") and "--max-queries 5" in doc["command"]
    assert "spectrum-blind: top-1" in capsys.readouterr().out
