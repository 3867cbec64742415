"""The formula retrieval protocol (training/spectra/formula_protocol.py) on a tiny library checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdMolDescriptors

from models.featurize.fingerprints import fingerprint_bits
from training.spectra.formula_protocol import (
    CandidateSets,
    FormulaQuery,
    evaluate_formula,
    flat_formula_metrics,
    formula_ranks,
)
from training.spectra.library import StructureLibrary

SPEC = "maccs"
# C2H6O: ethanol, dimethyl ether. C3H8O: propan-1-ol, methyl ethyl ether (propan-2-ol is not in the library).
LIBRARY = ["CCO", "COC", "CCCO", "CCOC"]


def _query(smiles: str) -> FormulaQuery:
    mol = Chem.MolFromSmiles(smiles)
    return FormulaQuery(rdMolDescriptors.CalcMolFormula(mol), Chem.MolToInchiKey(mol)[:14], smiles)


@pytest.fixture
def candidates(tmp_path) -> CandidateSets:
    path = tmp_path / "lib.csv"
    path.write_text("SMILES\n" + "\n".join(LIBRARY) + "\n")
    return CandidateSets(StructureLibrary.build([path], tmp_path / "cache", workers=1), SPEC)


def _confident(smiles: str) -> np.ndarray:
    """A prediction that is sure of the bits of ``smiles``: 0.9 where set, 0.1 elsewhere."""
    return np.where(fingerprint_bits([smiles], SPEC)[0] == 1, 0.9, 0.1)


def test_hand_checked_ranks(candidates):
    queries = [_query("CCO"), _query("COC"), _query("CCCO"), _query("CC(C)O")]
    # a sure prediction of the query's own structure puts it first; one of its isomer puts it second
    probs = np.stack([_confident("CCO"), _confident("CCO"), _confident("CCCO"), _confident("CCCO")])
    ranks = formula_ranks(probs, queries, candidates)
    assert ranks.ranks.tolist() == [1, 2, 1, 3]  # propan-2-ol: behind propan-1-ol and methyl ethyl ether
    assert ranks.n_candidates.tolist() == [2, 2, 2, 3]  # propan-2-ol added to its formula's two structures
    assert ranks.true_added.tolist() == [False, False, False, True]
    assert ranks.topk_counts(3) == [2, 3, 4]
    assert ranks.random_topk_counts(2) == pytest.approx([0.5 * 3 + 1 / 3, 3 + 2 / 3])


def test_ties_count_against_the_query(candidates):
    # a flat prediction gives every candidate the same score: the true one ranks last among the tied
    ranks = formula_ranks(np.full((1, 167), 0.5), [_query("CCO")], candidates)
    assert ranks.ranks.tolist() == [2]


def test_evaluate_formula_reports_model_and_blind_baseline(candidates):
    queries = [_query("CCO"), _query("CCCO")]
    probs = np.stack([_confident("CCO"), _confident("CCCO")])
    mean_fp = fingerprint_bits(["COC", "CCOC"], SPEC).mean(axis=0)  # "training" favours the ethers
    out = evaluate_formula(probs, queries, candidates, mean_fp)
    assert out["model"]["top1"] == 2 and out["model"]["topk_counts"][:2] == [2, 2]
    assert out["spectrum_blind"]["top1"] == 0 and out["spectrum_blind"]["mean_rank"] == 2.0
    assert out["model"]["mean_bit_auc"] is not None
    assert out["model"]["true_added"] == 0 and out["model"]["n_candidates_mean"] == 2.0
    assert out["model"]["single_candidate_queries"] == 0 and out["model"]["median_candidates"] == 2.0
    metrics = flat_formula_metrics(out["model"])
    assert metrics["formula_top1_rate"] == 1.0 and metrics["formula_n_candidates_mean"] == 2.0


def test_prediction_count_must_match(candidates):
    with pytest.raises(ValueError, match="3 predictions for 2 queries"):
        formula_ranks(np.full((3, 167), 0.5), [_query("CCO"), _query("COC")], candidates)
