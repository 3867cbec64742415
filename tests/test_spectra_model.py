"""The model directory: save/load round trip (float32 exact, float16 as the rounded weights), per-spectrum errors
in prediction, the MLP baseline, and model name resolution."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from models.batch import MultimodalBatch
from models.featurize import BinningSpec, read_spectra
from models.featurize.mgf import Spectrum
from models.spectra_model import DEFAULT_MODEL_DIR, FingerprintMLP, SpectraModel, resolve_model_path

TINY = {"spectrum_hidden": (16,), "fingerprint_hidden": (8,)}


@pytest.fixture(scope="module")
def spectra(shared_data):
    path = shared_data / "massbank" / "massbank-pos-ms2.mgf.gz"
    return list(itertools.islice(read_spectra(path), 12))


def _tiny(name="svae", seed=0):
    torch.manual_seed(seed)
    sizes = {"spectrum_hidden": TINY["spectrum_hidden"]} if name == "mlp" else TINY
    return SpectraModel.create(name, latent_dim=4, name="tiny", **sizes)


@pytest.mark.parametrize("name", ["svae", "vaevae", "mlp"])
def test_round_trip_float32_is_exact(tmp_path, spectra, name):
    model = _tiny(name)
    model.card = {"data": "unit test", "metrics": {"top1": 0}}
    before = model.predict_fingerprints(spectra)
    model.save(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"weights.pt", "config.json", "card.json", "README.md"}
    loaded = SpectraModel.load(tmp_path / "m", device="cpu")
    assert loaded.model_name == name and loaded.name == "tiny" and loaded.card == model.card
    assert loaded.binning == BinningSpec() and loaded.fingerprint_spec == model.fingerprint_spec
    after = loaded.predict_fingerprints(spectra)
    assert before.shape == (len(spectra), model.fingerprint_spec.n_bits)
    np.testing.assert_array_equal(before, after)
    assert ((after > 0) & (after < 1)).all()
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["fingerprint_spec"] == "morgan2-2048+maccs" and config["network"]["n_bits"] == 2215
    # the product of experts' prior expert is recorded: a change of the library's default cannot alter a saved model
    assert config["network"].get("prior_expert") == (None if name == "mlp" else model.model.prior_expert)


def test_mlp_rejects_vae_options():
    # the MLP takes no fingerprint network sizes: a wrong option is an error, not silently ignored
    with pytest.raises(ValueError, match="mlp baseline takes no"):
        SpectraModel.create("mlp", latent_dim=4, spectrum_hidden=(8,), fingerprint_hidden=(8,))


def test_round_trip_float16_equals_rounded_weights(tmp_path, spectra):
    model = _tiny()
    model.save(tmp_path / "half", weights_dtype="float16")
    model.save(tmp_path / "full")
    size = {d: (tmp_path / d / "weights.pt").stat().st_size for d in ("half", "full")}
    assert size["half"] < 0.6 * size["full"]
    loaded = SpectraModel.load(tmp_path / "half", device="cpu")
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    # the same network with every float weight rounded to float16 and back gives the same predictions
    rounded = {k: v.half().float() if v.is_floating_point() else v for k, v in model.model.state_dict().items()}
    model.model.load_state_dict(rounded)
    np.testing.assert_array_equal(model.predict_fingerprints(spectra), loaded.predict_fingerprints(spectra))


def test_one_bad_spectrum_does_not_sink_the_batch(spectra):
    model = _tiny()
    good = model.predict_fingerprints(spectra[:3])
    s = spectra[1]
    # every peak far above the precursor: nothing is left once those peaks are removed
    bad = Spectrum(7, "bad one", 100.0, 1, s.mz[:2] * 0 + 500.0, s.intensity[:2], {})
    pred = model.predict([spectra[0], bad, spectra[1], spectra[2]])
    assert set(pred.errors) == {1} and not pred.ok(1) and pred.ok(0)
    assert "precursor" in pred.errors[1].reason and pred.errors[1].title == "bad one"
    assert np.isnan(pred.probs[1]).all()
    np.testing.assert_allclose(pred.probs[[0, 2, 3]], good, rtol=1e-6, atol=1e-7)


def test_mlp_trains_on_paired_only():
    torch.manual_seed(0)
    net = FingerprintMLP(n_bins=20, n_bits=6, spectrum_hidden=(5,))

    x, y = torch.rand(4, 20), (torch.rand(4, 6) > 0.5).float()
    out = net(MultimodalBatch(paired={"spectrum": x, "fingerprint": y}))
    p = torch.sigmoid(net.logits(x))  # train mode: BatchNorm on this batch's statistics, as in the loss
    expected = -(y * p.log() + (1 - y) * (1 - p).log()).sum(1).mean()
    torch.testing.assert_close(out.total, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="paired"):
        net(MultimodalBatch(unpaired={"spectrum": x}))


@pytest.mark.parametrize("name", ["svae", "vaevae"])
def test_prediction_runs_only_the_fingerprint_decoder(name):
    model = _tiny(name)
    ran = []
    for modality, decoder in model.model.decoders.items():
        decoder.register_forward_hook(lambda *_, m=modality: ran.append(m))
    x = np.random.default_rng(0).random((3, model.binning.n_bins), dtype=np.float32)
    probs = model.predict_features(x)
    assert ran == ["fingerprint"]
    with torch.no_grad():
        z = model.model.posterior({"spectrum": torch.from_numpy(x)}).mean
        expected = model.model.decode(z)["fingerprint"].numpy()
    np.testing.assert_allclose(probs, expected, rtol=1e-6)


def test_sizes_must_match_binning():
    with pytest.raises(ValueError, match="do not match"):
        SpectraModel.create("svae", latent_dim=4, n_bits=100, **TINY)


def test_resolve_model_path(tmp_path):
    assert resolve_model_path("default") == DEFAULT_MODEL_DIR
    assert resolve_model_path(str(tmp_path)) == tmp_path
    assert resolve_model_path("./not/there") == resolve_model_path("./not/there")
    assert resolve_model_path("mine", data_dir=tmp_path) == tmp_path / "models" / "mine"
    with pytest.raises(ValueError, match="data directory"):
        resolve_model_path("mine")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        SpectraModel.load(tmp_path)
