"""``msvae reproduce``: a 2 x 2 sweep with tiny settings writes the report files with DESIGN.md's keys and resumes
from stored runs; the paper's Table 1 as printed in the paper's text."""

from __future__ import annotations

import json
import re

import matplotlib.image
import pytest

from app.cli import main
from training.paper_results import TABLE_1, paper_claims, paper_results
from training.reproduce import ordering_checks, run_dir, stored_result

TINY = ["--epochs", "1", "--max-train", "200", "--max-valid", "100", "--max-test", "100", "--device", "cpu"]


@pytest.fixture(scope="module")
def oracle_path(shared_data, tmp_path_factory):
    """A small real ResNet-18 oracle (width 4, one epoch on 500 images)."""
    from training.oracles import train_mnist_oracle

    path = tmp_path_factory.mktemp("oracle") / "mnist_resnet18.pt"
    train_mnist_oracle(shared_data / "mnist", path, epochs=1, width=4, max_train=500)
    return path


@pytest.mark.full_data
def test_table_1_is_the_papers(shared_data):
    """Table 1 parsed from the paper's text: the same numbers and models."""
    text = (shared_data.parent / "paper.txt").read_text()
    table = text[text.index("Table 1:") : text.index("The quantitative results are shown in Table 1")]
    rows = dict(re.findall(r"^(MMVAE|SVAE|VAEVAE\*?)\s+([\d.]+\s+[\d.]+\s+[\d.]+)\s*$", table, re.M))
    names = {"MMVAE": "mmvae", "SVAE": "svae", "VAEVAE": "vaevae", "VAEVAE*": "vaevae-star"}
    keys = ("both", "top", "bottom")
    parsed = {names[k]: dict(zip(keys, map(float, v.split()), strict=True)) for k, v in rows.items()}
    assert parsed == TABLE_1
    assert [(r["model"], r["supervision"], r["metrics"]) for r in paper_results("mnist-split")] == [
        (m, 1.0, TABLE_1[m]) for m in TABLE_1
    ]
    # the figures' values are not in the text: no numbers for the other experiments
    assert paper_results("mnist-split-3") == paper_results("mnist-svhn") == paper_results("cub-captions") == []
    assert all(paper_claims(e) for e in ("mnist-split", "mnist-split-3", "mnist-svhn", "cub-captions"))


def test_reproduce_2x2_writes_report_and_resumes(shared_data, oracle_path, tmp_path, capsys):
    out, runs = tmp_path / "reports", tmp_path / "runs"
    argv = ["reproduce", "mnist-split", "--models", "svae", "mmvae", "--supervision-levels", "1.0", "0.1",
            *TINY, "--data", str(shared_data), "--oracle", str(oracle_path), "--out-dir", str(out),
            "--runs-dir", str(runs)]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((out / "mnist-split.json").read_text())
    assert {"experiment", "epochs", "machine", "results", "paper"} <= set(report)
    assert report["experiment"] == "mnist-split" and report["epochs"] == 1 and "CPU" in report["machine"]
    assert [(r["model"], r["supervision"]) for r in report["results"]] == [
        ("svae", 1.0), ("svae", 0.1), ("mmvae", 1.0), ("mmvae", 0.1),
    ]  # fmt: skip
    for r in report["results"]:
        assert list(r["metrics"]) == ["both", "top", "bottom"]
        assert all(0.0 <= v <= 1.0 for v in r["metrics"].values())
        stored = json.loads((run_dir(runs, "mnist-split", r["model"], r["supervision"]) / "result.json").read_text())
        assert stored["metrics"] == r["metrics"]
        # the per-epoch validation scores, read from the trainer's metrics.jsonl
        (epoch,) = r["valid_history"]
        assert epoch["epoch"] == 1 and epoch["steps"] > 0 and 0.0 <= epoch["metrics"]["both"] <= 1.0
    assert report["paper"] == paper_results("mnist-split")
    assert report["settings"]["max_train"] == 200 and report["settings"]["n_test"] == 100

    md = (out / "mnist-split.md").read_text()
    assert (
        "msvae reproduce mnist-split" in md and "Epochs: 1 per run (the paper: 200)" in md and report["machine"] in md
    )
    svae = report["results"][0]["metrics"]
    assert f"| SVAE | 1 | {svae['both']:.3f} / 0.948 | {svae['top']:.3f} / 0.872 | {svae['bottom']:.3f} / 0.816 |" in md
    assert "| VAEVAE* | 1 | -- / 0.958 |" in md  # not in this sweep: the paper's number alone
    assert "![mnist-split" in md and "(mnist-split.png)" in md
    assert "## Learning curves: validation `both` after each epoch" in md
    first = report["results"][0]["valid_history"][0]["metrics"]["both"]
    assert f"| svae | 1 | {first:.3f} |" in md
    # the KL terms of the training loss, epoch by epoch: SVAE's joint posterior among them
    kl = report["results"][0]["valid_history"][0]["kl"]
    assert "paired/kl" in kl and kl["paired/kl"] > 0
    assert "## KL terms of the training loss" in md and f"| svae | 1 | paired/kl | {kl['paired/kl']:.2f} |" in md

    png = out / "mnist-split.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 200 and image.shape[1] > 3 * image.shape[0] / 2  # three panels side by side

    # a second call reads the stored runs back instead of training them again
    stamps = {p: p.stat().st_mtime_ns for p in runs.rglob("result.json")}
    capsys.readouterr()
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in runs.rglob("result.json")} == stamps
    assert capsys.readouterr().out.count("stored result") == 4
    # other settings do not match the stored runs
    assert stored_result(run_dir(runs, "mnist-split", "svae", 1.0), {"epochs": 2}) is None
    assert stored_result(run_dir(runs, "mnist-split", "svae", 1.0), {"epochs": 1, "max_train": 200}) is not None

    # --stored-only trains nothing: the missing runs are listed, the stored ones reported
    only = [a if a != "mmvae" else "vaevae" for a in argv] + ["--stored-only"]
    assert main(only) == 0
    assert not run_dir(runs, "mnist-split", "vaevae", 1.0).exists()
    report = json.loads((out / "mnist-split.json").read_text())
    assert [(r["model"], r["supervision"]) for r in report["results"]] == [("svae", 1.0), ("svae", 0.1)]
    assert report["missing_runs"] == ["vaevae s=1", "vaevae s=0.1"]
    assert "- Not run (no stored result; left out): vaevae s=1, vaevae s=0.1" in (out / "mnist-split.md").read_text()


def test_ordering_checks_state_the_facts():
    results = [
        {"model": "svae", "supervision": 1.0, "metrics": {"both": 0.9, "top": 0.8, "bottom": 0.7}},
        {"model": "mmvae", "supervision": 1.0, "metrics": {"both": 0.5, "top": 0.2, "bottom": 0.75}},
        {"model": "svae", "supervision": 0.01, "metrics": {"both": 0.6, "top": 0.5, "bottom": 0.4}},
        {"model": "mmvae", "supervision": 0.01, "metrics": {"both": 0.3, "top": 0.6, "bottom": 0.3}},
    ]
    checks = ordering_checks({"experiment": "mnist-split", "results": results})
    assert "`both`: every PoE model above MMVAE at supervision 1, 0.01" in checks
    assert "`top`: every PoE model above MMVAE at supervision 1; not at 0.01" in checks
    assert "`bottom`: every PoE model above MMVAE at supervision 0.01; not at 1" in checks
    results[2]["metrics"]["bottom"] = 0.1
    assert "`bottom`: every PoE model above MMVAE at no supervision level; not at 1, 0.01" in ordering_checks(
        {"experiment": "mnist-split", "results": results}
    )
    assert "`top` at the lowest level (0.01): best mmvae; mmvae 0.600, svae 0.500" in checks
    assert "`top`: the best PoE model above MMVAE at supervision 1; not at 0.01" in checks
