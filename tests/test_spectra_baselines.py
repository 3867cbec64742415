"""Issue 12's pieces around the spectra models: the library-search baseline against a hand-computed case, the
bounded spectrum decoder mean, a selected fingerprint travelling with a saved model, the bootstrap spread, and
unpaired library fingerprints in the semi-supervised data."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import scipy.sparse
import torch

from models.featurize import read_spectra
from models.featurize.binning import LOG1P_RELATIVE_MAX, BinningSpec
from models.featurize.fingerprints import fingerprint_bits, select_bits
from models.networks.spectra import modalities
from models.retrieval import candidate_scores
from models.spectra_model import SpectraModel
from training.spectra.evaluate import bootstrap_top_k
from training.spectra.library_search import library_search_probs, mix_predictions, nearest_neighbours
from training.spectra.report import read_study


def test_library_search_by_hand():
    # library: three spectra over 3 bins; the query (1, 1, 0) has cosine 1/sqrt(2) with rows 0 and 1, 1 with row 2
    library = scipy.sparse.csr_matrix(np.array([[1.0, 0, 0], [0, 2.0, 0], [3.0, 3.0, 0]]))
    bits = np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1]], dtype=np.uint8)
    query = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 5.0]])
    idx, sim = nearest_neighbours(query, library, k=2)
    assert idx[0].tolist() == [2, 0]  # the tie between rows 0 and 1 goes to the lower row
    assert sim[0] == pytest.approx([1.0, 1 / np.sqrt(2)])
    assert sim[1] == pytest.approx([0.0, 0.0]) and idx[1].tolist() == [0, 1]  # orthogonal to everything
    probs = library_search_probs(query, library, bits, k=2)
    np.testing.assert_allclose(probs[0], [0.5, 0.0, 0.5, 1.0])
    # ranked by cross-entropy: the candidate with bits (1, 0, 1, 1) matches the mean fingerprint best
    cands = np.array([[1, 0, 1, 1], [0, 1, 0, 1], [1, 0, 0, 1]], dtype=np.uint8)
    assert np.argmin(candidate_scores(probs[0], cands)) == 0
    np.testing.assert_allclose(mix_predictions(np.zeros((1, 4)), probs[:1], 0.25), 0.25 * probs[:1])
    with pytest.raises(ValueError, match="fewer than k"):
        nearest_neighbours(query, library, k=4)


def test_bounded_spectrum_decoder_mean_stays_in_range():
    spec = modalities(n_bins=50, n_bits=12, spectrum_hidden=(8,), fingerprint_hidden=(8,),
                      spectrum_mean_bound=LOG1P_RELATIVE_MAX)  # fmt: skip
    decoder = spec["spectrum"].make_decoder(4).eval()  # BatchNorm with its initial running statistics
    out = decoder(1000 * torch.randn(64, 4))
    assert out.shape == (64, 50) and (out >= 0).all() and (out <= LOG1P_RELATIVE_MAX).all()
    assert out.min() < 0.01 and out.max() > LOG1P_RELATIVE_MAX - 0.01  # the bounds are reachable
    unbounded = modalities(n_bins=50, n_bits=12, spectrum_hidden=(8,), fingerprint_hidden=(8,))
    assert (unbounded["spectrum"].make_decoder(4).eval()(1000 * torch.randn(64, 4)) < 0).any()


def test_reconstruction_weights_reach_the_modalities():
    spec = modalities(n_bins=50, n_bits=12, spectrum_hidden=(8,), fingerprint_hidden=(8,), spectrum_weight=0.1)
    assert spec["spectrum"].weight == 0.1 and spec["fingerprint"].weight == 1.0


def test_selected_fingerprint_and_bounded_decoder_round_trip_through_a_model_dir(tmp_path, shared_data):
    smiles = ["CCO", "c1ccccc1O", "CC(=O)N", "CCCCCCN", "OC(=O)c1ccccc1", "CCOC(=O)C"]
    spec = select_bits("morgan2-256+maccs", fingerprint_bits(smiles, "morgan2-256+maccs"), 0.2, 0.8)
    binning = BinningSpec(bin_width=1.0, intensity="log1p-relative")
    torch.manual_seed(0)
    model = SpectraModel.create("svae", binning=binning, fingerprint_spec=spec, latent_dim=4, spectrum_hidden=(8,),
                                fingerprint_hidden=(8,), spectrum_mean_bound=LOG1P_RELATIVE_MAX)  # fmt: skip
    model.save(tmp_path / "m")
    loaded = SpectraModel.load(tmp_path / "m", device="cpu")
    assert loaded.fingerprint_spec == spec and loaded.fingerprint_spec.n_bits == spec.n_bits < 256 + 167
    assert loaded.binning == binning
    # the service featurizes candidates from the spec text alone: the same bits as training kept
    np.testing.assert_array_equal(
        fingerprint_bits(smiles, loaded.fingerprint_spec),
        fingerprint_bits(smiles, "morgan2-256+maccs")[:, spec.keep_mask()],
    )
    spectra = list(itertools.islice(read_spectra(shared_data / "massbank" / "massbank-pos-ms2.mgf.gz"), 4))
    np.testing.assert_array_equal(model.predict_fingerprints(spectra), loaded.predict_fingerprints(spectra))
    assert loaded.predict_fingerprints(spectra).shape == (4, spec.n_bits)


def test_bootstrap_resamples_whole_groups():
    # two groups: all hits in group a (3 queries), none in b (1 query); a resample holds 0, 1 or 2 copies of each
    ranks = np.array([1, 1, 1, 50])
    groups = np.array(["a", "a", "a", "b"])
    out = bootstrap_top_k(ranks, groups, ks=(1,), n_boot=400, seed=0)
    assert out["top1_rate_lo"] == pytest.approx(0.0) and out["top1_rate_hi"] == pytest.approx(1.0)
    assert 0 < out["top1_rate_sd"] < 0.6
    same = bootstrap_top_k(np.ones(6), np.arange(6), ks=(1, 5), n_boot=50)
    assert same["top1_rate_sd"] == 0 and same["top5_rate_lo"] == same["top5_rate_hi"] == 1


def test_study_runs_are_labelled_by_folder(tmp_path):
    for name, model in [("library-search-s0.1-seed2", "library-search"), ("svae-fpw10-s1-seed0", "svae"),
                        ("fingerprint-maccs", "mlp")]:  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps({"model": model, "supervision": 0.5}))
    records = read_study(tmp_path)
    assert [r["label"] for r in records] == ["library-search", "svae-fpw10"]  # library search first, no study runs
