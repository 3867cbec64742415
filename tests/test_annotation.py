"""Annotation (app/annotation.py): candidate sets from SMILES, TSV files and the candidate store; ranking against
the cross-entropy definition; per-spectrum errors; retrieval evaluation on the shipped examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.annotation import (
    CandidateSet,
    annotate,
    candidates_from_smiles,
    candidates_from_store,
    candidates_from_tsv,
    directory_candidates,
    evaluate_retrieval,
    spectrum_neutral_mass,
    true_inchikey_block,
)
from app.candidates.readers import CandidateFileError
from app.candidates.store import CandidateMatrix
from models.featurize import fingerprint_bits, pack_bits, parse_fingerprint_spec, read_spectra
from models.featurize.mgf import Spectrum
from models.spectra_model import SpectraModel

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPEC = parse_fingerprint_spec("morgan2-2048+maccs")


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return SpectraModel.create("svae", latent_dim=4, spectrum_hidden=(16,), fingerprint_hidden=(8,))


@pytest.fixture(scope="module")
def queries():
    return list(read_spectra(EXAMPLES / "query.mgf", strict=True))


def test_candidates_from_smiles_reports_invalid_ones():
    smiles = ["CCO", "C1CC", "c1ccccc1O", ""]
    cands, rejected = candidates_from_smiles(smiles, SPEC)
    assert [i for i, _ in rejected] == [1, 3]
    assert "C1CC" in rejected[0][1]
    assert cands.smiles == ["CCO", "Oc1ccccc1"] and len(cands) == 2
    assert cands.inchikeys[0] == "LFQSCWFLJHTTHZ-UHFFFAOYSA-N"  # ethanol
    assert cands.formulas == ["C2H6O", "C6H6O"]
    np.testing.assert_array_equal(cands.bits.to_packed(), pack_bits(fingerprint_bits(["CCO", "c1ccccc1O"], SPEC)))


def test_candidates_from_tsv_names_file_and_line(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text("smiles\tinchikey\tname\nCCO\tx\tethanol\nnot a smiles\t\tbad\n\t\tempty\nCCN\t\tethylamine\n")
    cands, rejected = candidates_from_tsv(path, SPEC)
    assert cands.smiles == ["CCO", "CCN"] and cands.names == ["ethanol", "ethylamine"]
    assert [line for line, _ in rejected] == [3, 4]
    assert rejected[0][1].startswith("q.tsv line 3: invalid SMILES")
    assert rejected[1][1] == "q.tsv line 4: empty smiles cell"
    (tmp_path / "nosmiles.tsv").write_text("name\tinchikey\nx\ty\n")
    with pytest.raises(CandidateFileError, match=r"nosmiles\.tsv: line 1: the header has no 'smiles' column"):
        candidates_from_tsv(tmp_path / "nosmiles.tsv", SPEC)
    with pytest.raises(CandidateFileError, match="missing.tsv: no such candidate file"):
        candidates_from_tsv(tmp_path / "missing.tsv", SPEC)


def test_candidates_from_store_by_mass_window():
    cands, _ = candidates_from_smiles(["C", "CC", "CCC", "CCCC"], SPEC)
    masses = np.array([16.0313, 30.0470, 44.0626, 58.0783])
    strings = lambda xs: np.array(xs, dtype=object)  # noqa: E731
    matrix = CandidateMatrix(
        SPEC, np.arange(4), masses, cands.bits.to_packed(), strings(cands.smiles),
        strings(cands.inchikeys), strings(cands.formulas),
    )  # fmt: skip
    got = candidates_from_store(matrix, 44.0626 * (1 + 5e-6), ppm=10)
    assert list(got.smiles) == ["CCC"] and list(got.formulas) == ["C3H8"]
    np.testing.assert_array_equal(got.bits, cands.bits[2:3].to_packed())
    assert np.shares_memory(got.bits, matrix.packed)  # the window's packed bytes, not a copy
    assert len(candidates_from_store(matrix, 44.0626 * (1 + 20e-6), ppm=10)) == 0


def test_neutral_mass_and_true_key(queries):
    s = queries[0]
    assert spectrum_neutral_mass(s) == pytest.approx(s.precursor_mz - 1.007276, abs=1e-5)  # [M+H]+
    assert true_inchikey_block(s) == s.inchikey[:14]
    no_key = Spectrum(0, "x", 100.0, 1, s.mz, s.intensity, {"smiles": "CCO"})
    assert true_inchikey_block(no_key) == "LFQSCWFLJHTTHZ"
    odd = Spectrum(0, "x", 100.0, 1, s.mz, s.intensity, {"adduct": "[M+Xx]+"})
    with pytest.raises(Exception, match="Xx"):
        spectrum_neutral_mass(odd)


def _cross_entropy(p: np.ndarray, bits: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    p = np.clip(p.astype(np.float64), eps, 1 - eps)
    return -(bits * np.log(p) + (1 - bits) * np.log(1 - p)).sum(axis=1)


def test_annotate_ranks_by_cross_entropy(tiny_model, queries):
    rejected: list[str] = []
    results = annotate(tiny_model, queries, directory_candidates(EXAMPLES / "candidates", SPEC, rejected), top_k=7)
    assert not rejected and len(results) == len(queries)
    probs = tiny_model.predict_fingerprints(queries)
    for item, spectrum, p in zip(results, queries, probs, strict=True):
        assert item["title"] == spectrum.title and item["precursor_mz"] == spectrum.precursor_mz
        cands, _ = candidates_from_tsv(EXAMPLES / "candidates" / f"{spectrum.title}.tsv", SPEC)
        assert item["n_candidates"] == len(cands) == 50
        expected = np.sort(_cross_entropy(p, cands.bits.to_dense()))[:7]
        got = [c["score"] for c in item["candidates"]]
        np.testing.assert_allclose(got, expected, rtol=1e-9)
        assert [c["rank"] for c in item["candidates"]] == list(range(1, 8))
        assert got == sorted(got)
        first = cands.smiles.index(item["candidates"][0]["smiles"])
        assert item["candidates"][0]["inchikey"] == cands.inchikeys[first]


def test_one_bad_spectrum_or_missing_file_is_reported_not_fatal(tiny_model, queries):
    s = queries[0]
    empty = Spectrum(1, "empty", 50.0, 1, s.mz[:1] * 0 + 900.0, s.intensity[:1], {})
    unnamed = Spectrum(2, "no-such-title", s.precursor_mz, 1, s.mz, s.intensity, {})
    results = annotate(tiny_model, [s, empty, unnamed], directory_candidates(EXAMPLES / "candidates", SPEC), 3)
    assert results[0]["n_candidates"] == 50 and "error" not in results[0]
    assert results[1]["error"]["index"] == 1 and "precursor" in results[1]["error"]["reason"]
    assert results[2]["error"]["title"] == "no-such-title" and "no such candidate file" in results[2]["error"]["reason"]
    assert results[1]["candidates"] == results[2]["candidates"] == []


def test_titles_that_are_not_file_names_are_refused(tiny_model, queries):
    s = queries[0]
    sneaky = Spectrum(0, "../query", s.precursor_mz, 1, s.mz, s.intensity, {})
    (result,) = annotate(tiny_model, [sneaky], directory_candidates(EXAMPLES / "candidates", SPEC), 3)
    assert "plain file name" in result["error"]["reason"]


def test_evaluate_retrieval_on_examples(tiny_model, queries):
    evaluation = evaluate_retrieval(tiny_model, queries, directory_candidates(EXAMPLES / "candidates", SPEC))
    report = evaluation.report
    assert report.n == len(queries) and not evaluation.skipped
    assert report.n_candidates_mean == 50
    ranks = [q["rank"] for q in evaluation.queries]
    assert all(1 <= r <= 50 for r in ranks)
    assert report.top1 == sum(r <= 1 for r in ranks) and report.top20 == sum(r <= 20 for r in ranks)
    # rank = 1 + the candidates scoring at least as well as the true one (recomputed here from the definition)
    probs = tiny_model.predict_fingerprints(queries)
    for q, s, p in zip(evaluation.queries, queries, probs, strict=True):
        cands, _ = candidates_from_tsv(EXAMPLES / "candidates" / f"{s.title}.tsv", SPEC)
        scores = _cross_entropy(p, cands.bits.to_dense())
        true = [i for i, k in enumerate(cands.inchikeys) if k[:14] == s.inchikey[:14]]
        assert q["rank"] == 1 + int(np.sum(np.delete(scores, true) <= scores[true].min() * (1 + 1e-6)))


def test_evaluate_retrieval_skips_what_it_cannot_rank(tiny_model, queries):
    s = queries[0]
    unknown = Spectrum(1, s.title, s.precursor_mz, 1, s.mz, s.intensity, {})  # no INCHIKEY, no SMILES
    elsewhere = Spectrum(2, s.title, s.precursor_mz, 1, s.mz, s.intensity, {"smiles": "CCCCCCCCCCCCO"})
    only = CandidateSet(["CCO"], ["LFQSCWFLJHTTHZ-UHFFFAOYSA-N"], ["C2H6O"], pack_bits(fingerprint_bits(["CCO"])))
    evaluation = evaluate_retrieval(tiny_model, [unknown, elsewhere], lambda _: only)
    assert evaluation.report.n == 0
    assert [x["why"] for x in evaluation.skipped] == [
        "no INCHIKEY or valid SMILES header",
        "true structure not among the candidates",
    ]
    assert evaluation.to_dict()["skipped_by_reason"]["true structure not among the candidates"] == 1
