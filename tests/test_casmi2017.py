"""The CASMI 2017 evaluation (training/spectra/casmi2017.py reads, app/casmi2017.py ranks; ``msvae
evaluate-casmi2017``) on small files written in the contest's layout: solutions table, summaries, one MS/MS MGF per
challenge, optional official candidates."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from app.casmi2017 import evaluate_casmi2017
from app.cli import main
from models.spectra_model import SpectraModel
from training.spectra.casmi2017 import Casmi2017LayoutError, challenge_spectrum, read_casmi2017
from training.spectra.library import StructureLibrary

SPEC = "maccs"
# challenge 5 (positive, 1-45 range), 46 (positive), 47 (negative): solutions with isomers in the library
SOLUTIONS = {5: "CCCO", 46: "CC(=O)Nc1ccc(O)cc1", 47: "OC(=O)c1ccccc1O"}
LIBRARY = ["CCOC", "CCCO", "CC(=O)Nc1ccc(O)cc1", "CC(=O)Oc1ccc(N)cc1", "Nc1ccc(cc1)OC(C)=O", "OC(=O)c1ccccc1O"]


def _mgf(name: str, precursor: float | None, peaks: list[tuple[float, float]]) -> str:
    head = f"BEGIN IONS\nTITLE={name}\n" + (f"PEPMASS={precursor}\n" if precursor else "") + "CHARGE=1+\n"
    return head + "".join(f"{mz}\t{i}\n" for mz, i in peaks) + "END IONS\n"


def write_casmi2017(folder: Path, *, candidates: bool = False) -> Path:
    """A small CASMI 2017 download in the official layout."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(f'{i},challenge-{n:03d},"{s}\t"\n' for i, (n, s) in enumerate(SOLUTIONS.items()))
    (folder / "CASMI-solutions.csv").write_text(",Challenge,SMILES\n" + rows)
    (folder / "Chal1to45Summary.csv").write_text(
        "MS_files,MSMS_files,ESI Mode,CollisionEnergy(eV),RT_sec\n"
        "challenge-005-ms.txt,challenge-005-msms.txt,Pos,20,300\n"
    )
    first = folder / "challenges-001-045-msms-mgf-20170908"
    first.mkdir()
    (first / "summary-001-045.csv").write_text("challengename\tPRECURSOR_MZ\nchallenge-005\t61.0648\n")
    (first / "challenge-005-msms.mgf").write_text(_mgf("challenge-005", None, [(31.0178, 100.0), (43.0542, 40.0)]))
    second = folder / "challenges-046-243-msms-mgf-20170908"
    second.mkdir()
    (second / "summary-046-243.csv").write_text(
        "challengename\tION_MODE\nchallenge-046\tpositive\nchallenge-047\tnegative\n"
    )
    (second / "challenge-046-msms.mgf").write_text(_mgf("challenge-046", 152.0706, [(110.06, 100.0), (93.03, 20.0)]))
    (second / "challenge-047-msms.mgf").write_text(_mgf("challenge-047", 137.0244, [(93.03, 100.0)]))
    if candidates:
        lists = folder / "challenges-001-243-candidates-20170908"
        lists.mkdir()
        (lists / "challenge-005.csv").write_text("Identifier,SMILES,InChIKey\n1,CCCO,x\n2,CC(C)O,y\n3,CCOC,z\n")
        (lists / "challenge-046.csv").write_text("Identifier,SMILES\n1,CC(=O)Nc1ccc(O)cc1\n")
        (lists / "challenge-047.csv").write_text("Identifier,SMILES\n1,OC(=O)c1ccccc1O\n")
    return folder


@pytest.fixture
def library(tmp_path) -> StructureLibrary:
    path = tmp_path / "lib.csv"
    path.write_text("SMILES\n" + "\n".join(LIBRARY) + "\n")
    return StructureLibrary.build([path], tmp_path / "cache", workers=1)


@pytest.fixture
def model(tmp_path) -> SpectraModel:
    """An untrained network: the pipeline is under test here, not the model's skill."""
    path = tmp_path / "model"
    SpectraModel.create("mlp", fingerprint_spec=SPEC, latent_dim=8, spectrum_hidden=(16,)).save(path)
    return SpectraModel.load(path, device="cpu")


def test_reads_the_official_layout(tmp_path):
    data = read_casmi2017(write_casmi2017(tmp_path / "casmi"))
    assert [c.name for c in data.challenges] == ["challenge-005", "challenge-046", "challenge-047"]
    c5, c46, c47 = data.challenges
    assert c5.solution_smiles == "CCCO"  # the trailing tab of the contest's table is stripped
    assert c5.ion_mode == "positive" and c5.precursor_mz == pytest.approx(61.0648)
    assert c46.ion_mode == "positive" and c47.ion_mode == "negative"
    assert c46.spectrum_file.name == "challenge-046-msms.mgf" and c46.candidate_file is None
    s5 = challenge_spectrum(c5)  # no PEPMASS in its MGF: the summary's precursor
    assert s5.precursor_mz == pytest.approx(61.0648) and s5.params["precursor_from"] == "summary"
    assert s5.smiles == "CCCO" and s5.title == "challenge-005" and len(s5.mz) == 2


@pytest.mark.parametrize(
    "remove, named",
    [
        ("CASMI-solutions.csv", "CASMI-solutions.csv"),
        ("Chal1to45Summary.csv", "Chal1to45Summary.csv"),
        ("challenges-046-243-msms-mgf-20170908/challenge-047-msms.mgf",
         "challenges-046-243-msms-mgf-20170908/challenge-047-msms.mgf"),
        ("challenges-001-045-msms-mgf-20170908/summary-001-045.csv",
         "challenges-001-045-msms-mgf-20170908/summary-001-045.csv"),
        ("challenges-001-243-candidates-20170908/challenge-046.csv",
         "challenges-001-243-candidates-20170908/challenge-046.csv"),
    ],
)  # fmt: skip
def test_refuses_a_partial_folder_naming_the_missing_file(tmp_path, remove, named):
    folder = write_casmi2017(tmp_path / "casmi", candidates=True)
    (folder / remove).unlink()
    with pytest.raises(Casmi2017LayoutError) as err:
        read_casmi2017(folder)
    assert err.value.missing == [named]
    assert named in str(err.value)


def test_refuses_a_folder_without_spectra_folders(tmp_path):
    folder = write_casmi2017(tmp_path / "casmi")
    for sub in folder.glob("challenges-*"):
        for f in sub.iterdir():
            f.unlink()
        sub.rmdir()
    with pytest.raises(Casmi2017LayoutError, match="no MS/MS spectra folder"):
        read_casmi2017(folder)


def test_formula_candidates_from_the_library(tmp_path, library, model):
    data = read_casmi2017(write_casmi2017(tmp_path / "casmi"))
    doc = evaluate_casmi2017(data, model, library, candidates="auto")
    assert doc["candidates"] == "formula" and doc["challenges"] == 3
    assert doc["n"] == 2 and doc["skipped_by_reason"] == {"negative ion mode": 1}
    by_title = {q["title"]: q for q in doc["queries"]}
    assert by_title["challenge-005"]["n_candidates"] == 2  # CCCO and CCOC (C3H8O)
    assert by_title["challenge-046"]["n_candidates"] == 2  # paracetamol, 4-aminophenyl acetate (one block)
    assert all(1 <= q["rank"] <= q["n_candidates"] for q in doc["queries"])
    assert len(doc["topk_counts"]) == 20 and doc["topk_counts"][-1] == 2
    assert doc["true_added"] == 0 and doc["precursor_from"] == {"summary": 1, "PEPMASS": 1}


def test_solution_missing_from_the_library_is_added(tmp_path, model):
    path = tmp_path / "lib.csv"
    path.write_text("SMILES\nCCOC\n")
    small = StructureLibrary.build([path], tmp_path / "small", workers=1)
    data = read_casmi2017(write_casmi2017(tmp_path / "casmi"))
    doc = evaluate_casmi2017(data, model, small, candidates="formula")
    assert doc["true_added"] == 2
    assert {q["title"]: q["n_candidates"] for q in doc["queries"]} == {"challenge-005": 2, "challenge-046": 1}


def test_official_candidate_lists(tmp_path, model):
    data = read_casmi2017(write_casmi2017(tmp_path / "casmi", candidates=True))
    doc = evaluate_casmi2017(data, model, None)
    assert doc["candidates"] == "official"
    assert {q["title"]: q["n_candidates"] for q in doc["queries"]} == {"challenge-005": 3, "challenge-046": 1}
    assert {q["title"]: q["rank"] for q in doc["queries"]}["challenge-046"] == 1


def test_cli_refuses_and_names_the_missing_file(tmp_path, capsys, model):
    folder = write_casmi2017(tmp_path / "casmi")
    (folder / "challenges-001-045-msms-mgf-20170908" / "challenge-005-msms.mgf").unlink()
    assert main(["evaluate-casmi2017", "--data", str(folder), "--model", str(tmp_path / "model")]) == 1
    err = capsys.readouterr().err
    assert "challenges-001-045-msms-mgf-20170908/challenge-005-msms.mgf" in err


def write_library_data(folder: Path) -> Path:
    """The library's sources in the shared data layout: a MassBank MGF and the three MOSES files (small)."""
    (folder / "massbank").mkdir(parents=True)
    with gzip.open(folder / "massbank" / "massbank-pos-ms2.mgf.gz", "wt") as f:
        f.write(_mgf("MSBNK-X-1", 61.0648, [(31.0, 1.0)]).replace("CHARGE=1+\n", "CHARGE=1+\nSMILES=CCCO\n"))
    (folder / "molecules" / "moses").mkdir(parents=True)
    for name, smiles in zip(("train", "test", "test_scaffolds"), (LIBRARY[:2], LIBRARY[2:4], LIBRARY[4:]), strict=True):
        with gzip.open(folder / "molecules" / "moses" / f"{name}.csv.gz", "wt") as f:
            f.write("SMILES\n" + "\n".join(smiles) + "\n")
    return folder


def test_cli_writes_report_and_curve(tmp_path, capsys, model):
    folder = write_casmi2017(tmp_path / "casmi")
    out = tmp_path / "r" / "casmi2017.json"
    shared = write_library_data(tmp_path / "shared")
    argv = ["evaluate-casmi2017", "--data", str(folder), "--model", str(tmp_path / "model"), "--out", str(out),
            "--library", str(shared), "--library-cache", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["n"] == 2 and doc["candidates"] == "formula" and len(doc["topk_counts"]) == 20
    assert {q["title"]: q["n_candidates"] for q in doc["queries"]} == {"challenge-005": 2, "challenge-046": 2}
    assert {"top1", "top5", "top10", "top20", "mean_rank", "median_rank", "n_candidates_mean"} <= set(doc)
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "report:" in capsys.readouterr().out


def test_official_list_without_smiles_column_is_skipped_with_its_name(tmp_path, model):
    folder = write_casmi2017(tmp_path / "casmi", candidates=True)
    bad = folder / "challenges-001-243-candidates-20170908" / "challenge-005.csv"
    bad.write_text("Identifier,InChI\n1,InChI=1S/C3H8O/c1-2-3-4/h4H,2-3H2,1H3\n")
    doc = evaluate_casmi2017(read_casmi2017(folder), model, None)
    (skipped,) = [s for s in doc["skipped"] if s["title"] == "challenge-005"]
    assert skipped["why"] == "no candidates" and "challenge-005.csv" in skipped["reason"]
    assert doc["n"] == 1
