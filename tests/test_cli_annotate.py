"""``msvae annotate`` and ``msvae evaluate-retrieval`` on the shipped examples with the shipped default model:
the README's main job, candidates from a directory and from the database, and the report keys of DESIGN.md."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from app.cli import main
from models.featurize import read_spectra
from models.spectra_model import DEFAULT_MODEL_DIR, SpectraModel

ROOT = Path(__file__).resolve().parents[1]
QUERY = str(ROOT / "examples" / "query.mgf")
CANDIDATES = str(ROOT / "examples" / "candidates")
REPORT_KEYS = {"n", "top1", "top5", "top10", "top20", "mean_rank", "median_rank", "n_candidates_mean"}


@pytest.fixture(autouse=True)
def _settings(tmp_path, monkeypatch):
    monkeypatch.setenv("MSVAE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MSVAE_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("MSVAE_DEVICE", "cpu")
    monkeypatch.delenv("MSVAE_MODEL", raising=False)


def test_default_model_is_shipped_and_small():
    model = SpectraModel.load(DEFAULT_MODEL_DIR, device="cpu")
    assert model.model_name == "svae" and model.fingerprint_spec.base.text == "maccs"
    assert model.fingerprint_spec.n_bits == model.card["training"]["network"]["n_bits"] == 144  # bits selected
    assert model.binning.n_bins == model.card["training"]["network"]["n_bins"] == 1_100  # 1 Da bins: a small model
    assert (DEFAULT_MODEL_DIR / "weights.pt").stat().st_size < 6 * 2**20
    for key in ("data", "split", "supervision", "fingerprint_spec", "binning", "training", "test_metrics"):
        assert key in model.card
    assert "test_metrics" in (DEFAULT_MODEL_DIR / "README.md").read_text().lower().replace(" ", "_")


def test_annotate_examples_to_json(tmp_path, capsys):
    out = tmp_path / "result.json"
    assert main(["annotate", QUERY, "--candidates", CANDIDATES, "--top-k", "5", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    titles = [s.title for s in read_spectra(QUERY)]
    assert doc["model"] == "default" and doc["rejected"] == []
    assert [r["title"] for r in doc["results"]] == titles
    for item in doc["results"]:
        assert item["n_candidates"] == 50 and "error" not in item
        scores = [c["score"] for c in item["candidates"]]
        assert [c["rank"] for c in item["candidates"]] == [1, 2, 3, 4, 5]
        assert scores == sorted(scores) and all(s > 0 for s in scores)
        assert all(len(c["inchikey"]) == 27 and c["formula"] and c["smiles"] for c in item["candidates"])
    assert f"annotated {len(titles)} of {len(titles)} spectra" in capsys.readouterr().err


def test_annotate_examples_to_tsv_and_stdout(tmp_path, capsys):
    out = tmp_path / "result.tsv"
    assert main(["annotate", QUERY, "--candidates", CANDIDATES, "--top-k", "3", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(), delimiter="\t"))
    assert len(rows) == 5 * 3 and rows[0]["rank"] == "1" and rows[0]["error"] == ""
    assert main(["annotate", QUERY, "--candidates", CANDIDATES, "--top-k", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split("\t")[:4] == ["title", "precursor_mz", "n_candidates", "rank"] and len(printed) == 6


def test_annotate_reports_bad_spectra_and_rows(tmp_path, capsys):
    text = Path(QUERY).read_text()
    bad = "BEGIN IONS\nTITLE=no-peaks\nPEPMASS=200.1\nEND IONS\n"
    query = tmp_path / "q.mgf"
    query.write_text(text + "\n" + bad)
    cands = tmp_path / "cands"
    cands.mkdir()
    for f in Path(CANDIDATES).iterdir():
        (cands / f.name).write_text(f.read_text())
    first = sorted(cands.iterdir())[0]
    first.write_text(first.read_text() + "C1CC(\tx\tbroken\n")
    out = tmp_path / "r.json"
    assert main(["annotate", str(query), "--candidates", str(cands), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert len(doc["results"]) == 5 and doc["rejected"][0]["title"] == "no-peaks"
    err = capsys.readouterr().err
    assert "no-peaks" in err and "no peaks" in err
    assert f"rejected candidate {first.name} line 52: invalid SMILES" in err


def test_annotate_from_the_candidate_database(tmp_path, capsys):
    assert main(["annotate", QUERY]) == 1
    assert "msvae candidates import" in capsys.readouterr().err
    for f in sorted(Path(CANDIDATES).iterdir()):
        assert main(["candidates", "import", str(f)]) == 0
    out = tmp_path / "db.json"
    assert main(["annotate", QUERY, "--ppm", "10", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    truth = {s.title: s.inchikey for s in read_spectra(QUERY)}
    for item in doc["results"]:
        assert item["n_candidates"] >= 1  # at least the true structure is within 10 ppm
        assert truth[item["title"]][:14] in {c["inchikey"][:14] for c in item["candidates"]}


def test_evaluate_retrieval_writes_report_keys(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["evaluate-retrieval", QUERY, "--candidates", CANDIDATES, "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert set(doc) >= REPORT_KEYS and doc["n"] == 5 and doc["n_candidates_mean"] == 50
    assert doc["top1"] <= doc["top5"] <= doc["top10"] <= doc["top20"] <= 5
    assert 1 <= doc["median_rank"] <= 50 and len(doc["queries"]) == 5 and doc["n_skipped"] == 0
    printed = capsys.readouterr().out
    assert "top 1" in printed and str(out) in printed


def test_missing_inputs_are_errors(tmp_path, capsys):
    assert main(["annotate", str(tmp_path / "nope.mgf"), "--candidates", CANDIDATES]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["evaluate-retrieval", QUERY, "--candidates", str(tmp_path / "none")]) == 1
    assert "no such candidate directory" in capsys.readouterr().err
    assert main(["annotate", QUERY, "--candidates", CANDIDATES, "--model", str(tmp_path / "m")]) == 1
    assert "no config.json" in capsys.readouterr().err


def test_a_new_database_gets_the_default_set_and_annotates_an_mzml_run(tmp_path, capsys):
    """``msvae db upgrade`` fills an empty database with the shipped MassBank structures (once); ``msvae annotate``
    then ranks real structures for the MS2 scans of an mzML run, rejecting the scan without precursor by name."""
    import gzip
    import warnings

    from spectrum_files import NATIVE_ID, write_mzml

    from app.candidates.default import DEFAULT_CANDIDATES

    spectra = list(read_spectra(QUERY))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = write_mzml(tmp_path / "run.mzML", spectra)
    assert main(["db", "upgrade"]) == 0
    rows = [line for line in gzip.decompress(DEFAULT_CANDIDATES.read_bytes()).splitlines() if line[:1] != b"#"]
    shipped = len(rows) - 1  # the header row
    assert f"loaded the default set ({shipped} MassBank structures)" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert "default set" not in capsys.readouterr().out  # not empty any more: nothing loaded again

    out = tmp_path / "run.json"
    assert main(["annotate", str(run), "--top-k", "1000", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [r["title"] for r in doc["results"]] == [NATIVE_ID.format(k) for k in range(2, len(spectra) + 2)]
    for item, spectrum in zip(doc["results"], spectra, strict=True):
        assert item["n_candidates"] >= 1 and "note" not in item
        # every query is a MassBank record, so its structure is in the default set, within 10 ppm
        assert spectrum.inchikey[:14] in {c["inchikey"][:14] for c in item["candidates"]}
    err = capsys.readouterr().err
    assert f"TITLE={NATIVE_ID.format(len(spectra) + 2)!r}" in err and "without a precursor" in err
