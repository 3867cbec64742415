"""The spectra experiment: MassBank featurized, supervision by structure, candidate protocols against brute force,
the random baseline's closed form, pool retrieval against the ranking definition, a tiny train_one run, and
`msvae train spectra` with its binning options on the first 600 MassBank spectra."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch

from app.cli import main as cli_main
from models.featurize import fingerprint_bits
from models.networks.spectra import (
    FINGERPRINT_DECODER_HIDDEN,
    FINGERPRINT_HIDDEN,
    SPECTRUM_DECODER_HIDDEN,
    SPECTRUM_HIDDEN,
)
from models.retrieval import candidate_scores
from models.spectra_model import SpectraModel, build_network
from training.spectra.baseline import random_ranking_report
from training.spectra.data import MASSBANK_FILE, load_spectra_data, semi_supervised_data
from training.spectra.evaluate import Protocol, candidate_rows, pool_retrieval
from training.spectra.experiment import _network_sizes, train_one
from training.spectra.report import add_runs, build_report, write_report
from training.spectra.study import run_network


@pytest.fixture(scope="module")
def data(shared_data):
    return load_spectra_data(shared_data, limit=1500)


def test_featurized_records_and_pool(data):
    n = len(data.records)
    assert data.features.shape == (n, 11_000) and len(data.structure) == n
    pool = data.structures
    assert len(pool) == len(set(r.inchikey_block for r in data.records))
    assert np.all(np.diff(pool.masses) >= 0)
    for i in (0, n // 2, n - 1):
        rec, row = data.records[i], data.structure[i]
        assert pool.blocks[row] == rec.inchikey_block
        assert pool.masses[row] == pytest.approx(rec.monoisotopic_mass)
    np.testing.assert_array_equal(pool.bits[:3], fingerprint_bits(list(pool.smiles[:3])))
    # [M+H]+ records: neutral mass = precursor m/z - proton, within a few ppm of the structure's mass
    mh = [i for i in range(n) if data.records[i].adduct == "[M+H]+"]
    err = np.abs(data.query_mass[mh] - pool.masses[data.structure[mh]]) / pool.masses[data.structure[mh]] * 1e6
    assert np.median(err) < 5


@pytest.mark.parametrize("supervision", [1.0, 0.5, 0.1])
def test_supervision_is_by_structure(data, supervision):
    semi, counts = semi_supervised_data(data, supervision, seed=3)
    train_structures = np.unique(data.structure[data.split.train])
    assert counts["paired_structures"] + counts["hidden_structures"] == len(train_structures)
    assert counts["paired_structures"] == max(1, round(supervision * len(train_structures)))
    assert counts["paired_spectra"] + counts["unpaired_spectra"] == len(data.split.train)
    assert semi.n_paired() == counts["paired_spectra"]
    if supervision == 1.0:
        assert semi.unpaired == {}
        return
    # the unpaired fingerprints are exactly the hidden structures, none of which has a paired spectrum
    hidden_rows = semi.unpaired["fingerprint"].index.numpy()
    paired_rows = np.unique(semi.paired["fingerprint"].index.numpy())
    assert len(np.unique(hidden_rows)) == len(hidden_rows) == counts["hidden_structures"]
    assert not set(hidden_rows) & set(paired_rows)
    fp = semi.unpaired["fingerprint"].take(torch.arange(3)).numpy()
    np.testing.assert_array_equal(fp, data.structures.bits[hidden_rows[:3]])
    x = semi.unpaired["spectrum"].take(torch.tensor([0, 1]))
    assert x.shape == (2, 11_000) and x.dtype == torch.float32 and float(x.max()) == pytest.approx(1.0)


def test_candidate_protocols_against_brute_force():
    rng = np.random.default_rng(0)
    masses = np.sort(rng.uniform(100, 500, 3000))
    for true_row in rng.integers(0, 3000, 20):
        query = masses[true_row] * (1 + rng.normal(0, 5e-6))
        rows, added = candidate_rows(masses, query, int(true_row), Protocol("ppm", ppm=10))
        window = np.flatnonzero(np.abs(masses - query) <= query * 10e-6)
        assert set(rows) == set(window) | {true_row} and added == (true_row not in window)
        rows, added = candidate_rows(masses, query, int(true_row), Protocol("nearest", n=64))
        assert len(rows) == len(set(rows)) == 64 and true_row in rows
        nearest = set(np.argsort(np.abs(masses - query))[:64])
        assert set(rows) == nearest or (added and len(set(rows) & nearest) == 63)


def test_random_ranking_closed_form():
    report = random_ranking_report([1, 2, 4, 40])
    assert report["top1"] == pytest.approx(1 + 1 / 2 + 1 / 4 + 1 / 40)
    assert report["top5"] == pytest.approx(3 + 5 / 40) and report["top20_rate"] == pytest.approx((3 + 0.5) / 4)
    assert report["mean_rank"] == pytest.approx(np.mean([1, 1.5, 2.5, 20.5]))
    assert report["n_candidates_mean"] == pytest.approx(47 / 4)


def test_pool_retrieval_matches_ranking_definition(data):
    rng = np.random.default_rng(1)
    rows = data.split.test[:40]
    probs = rng.random((len(rows), data.fingerprint_spec.n_bits))
    true_rows = data.structure[rows]
    reports = pool_retrieval(probs, true_rows, data.query_mass[rows], data.structures)
    protocol = Protocol("nearest", n=256)
    ranks = []
    for p, t, m in zip(probs, true_rows, data.query_mass[rows], strict=True):
        cands, _ = candidate_rows(data.structures.masses, m, int(t), protocol)
        scores = candidate_scores(p, data.structures.bits[cands])
        true_score = scores[cands == t][0]
        ranks.append(1 + int(np.sum(scores[cands != t] <= true_score * (1 + 1e-6))))
    r = reports["nearest256"]
    assert r["n"] == 40 and r["mean_rank"] == pytest.approx(np.mean(ranks))
    assert r["top10"] == sum(k <= 10 for k in ranks)
    assert r["n_candidates_mean"] == min(256, len(data.structures))


def test_train_one_tiny_run(shared_data, tmp_path):
    record = train_one(
        "svae", 0.5, 1, shared_data, tmp_path / "run", "cpu", 0, max_spectra=600, max_valid=50,
        latent_dim=4, spectrum_hidden=(8,), fingerprint_hidden=(8,), progress=False, model_dir=tmp_path / "m",
    )  # fmt: skip
    assert record["best_epoch"] == 1 and record["epochs"] == 1 and record["n_valid"] <= 50
    for key in ("ppm10_top1_rate", "nearest256_top10_rate", "mean_bit_auc"):
        assert 0 <= record["metrics"][key] <= 1
    assert record["test"]["nearest256"]["n"] == record["n_test"]
    assert json.loads((tmp_path / "run" / "result.json").read_text())["metrics"] == record["metrics"]
    model = SpectraModel.load(tmp_path / "m", device="cpu")
    assert model.card["supervision"]["level"] == 0.5 and model.card["training"]["epochs"] == 1
    assert (tmp_path / "run" / "model" / "weights.pt").is_file() and (tmp_path / "run" / "split.json").is_file()
    paths = write_report(build_report([record], "the command", "the machine"), tmp_path / "reports")
    report = json.loads(paths["json"].read_text())
    assert report["results"][0]["metrics"] == record["metrics"] and report["epochs"] == [1]
    text = paths["markdown"].read_text()
    assert text.count("| svae | 0.5 | 0 |") == 2 and text.count("| random |") == 2 and "`the command`" in text
    # a later run joins the report (its folder beside the old ones is not needed); the same run again replaces it
    later = {**record, "label": "svae-wide", "seed": 1}
    grown = add_runs(add_runs(report, [later], "add 1"), [later], "add 2")
    assert [(r["label"], r["seed"]) for r in grown["results"]] == [("svae", 0), ("svae-wide", 1)]
    assert grown["added_by"] == ["add 1", "add 2"] and grown["command"] == "the command"


def _first_spectra(source, target, n: int) -> None:
    """Copy the first ``n`` spectra of a gzipped MGF into another gzipped MGF."""
    with gzip.open(source, "rt") as src, gzip.open(target, "wt") as dst:
        for line in src:
            dst.write(line)
            n -= line.strip() == "END IONS"
            if n == 0:
                return


def test_cli_train_spectra_with_binning_options(shared_data, tmp_path, capsys):
    data_dir = tmp_path / "data"
    (data_dir / "massbank").mkdir(parents=True)
    _first_spectra(shared_data / MASSBANK_FILE, data_dir / MASSBANK_FILE, 600)
    argv = ["train", "spectra", "--model", "svae", "--supervision", "0.5", "--epochs", "1", "--data", str(data_dir),
            "--out", str(tmp_path / "run"), "--device", "cpu", "--max-valid", "50"]  # fmt: skip
    assert cli_main([*argv, "--bin-width", "1", "--intensity", "log1p"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["data"]["binning"]["bin_width"] == 1.0 and record["data"]["binning"]["intensity"] == "log1p"
    model = SpectraModel.load(tmp_path / "run" / "model", device="cpu")
    assert model.binning.n_bins == 1100 and model.binning.intensity == "log1p"

    assert cli_main([*argv, "--intensity", "cube"]) == 2
    assert "intensity 'cube' is not one of sqrt, log1p, log1p-relative, linear" in capsys.readouterr().err
    assert cli_main(["train", "mnist-split", "--model", "svae", "--bin-width", "1"]) == 2
    assert "for spectra only" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["svae", "vaevae"])
def test_study_paper_network_is_the_papers_tables(model):
    """``--network paper`` builds Tables A.8/A.9 with latent 300, not the study's small widths with latent 300."""
    size, overrides = run_network(model, "paper")
    latent_dim, sizes = _network_sizes(model, size, overrides)
    with torch.device("meta"):  # shapes only: the paper's SVAE has 226 M parameters
        network = build_network(model, latent_dim, {"n_bins": 1100, "n_bits": 144, **sizes})
    widths = [m.out_features for m in network.modules() if isinstance(m, torch.nn.Linear)]
    assert latent_dim == 300
    for width in (*SPECTRUM_HIDDEN, *SPECTRUM_DECODER_HIDDEN, *FINGERPRINT_HIDDEN, *FINGERPRINT_DECODER_HIDDEN):
        assert width in widths
    assert 128 not in widths and 256 not in widths  # the study's small widths
    mlp_size, mlp = run_network("mlp", "paper", ["latent_dim=300"])
    assert _network_sizes("mlp", mlp_size, mlp)[1] == {"spectrum_hidden": SPECTRUM_HIDDEN}
    study_size, study = run_network(model, "study", ["latent_dim=32"])
    assert _network_sizes(model, study_size, study)[0] == 32 and study["spectrum_hidden"] == (256, 128)
