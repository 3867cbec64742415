"""A trained spectrum -> fingerprint model ready for inference, and its directory format.

A model directory holds:

- ``weights.pt``: the network's ``state_dict`` (floating tensors stored as ``config["weights_dtype"]``, float16 for
  the shipped model; cast back to float32 when loaded);
- ``config.json``: what rebuilds the network and featurizes exactly as in training: the model name (a registry name
  such as ``svae``, or ``mlp`` for the feed-forward baseline), ``latent_dim``, the network overrides given to
  :func:`models.build_model` (``n_bins``, ``n_bits``, hidden widths ...), the spectrum binning
  (:class:`BinningSpec` as a dict) and the fingerprint spec string;
- ``card.json`` and ``README.md``: the model card (data, split, supervision, epochs, metrics), free-form JSON.

The fingerprint predicted for a spectrum is the decoder's mean (bit probabilities) at the posterior mean of
q(z | spectrum).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import torch
from torch import nn

from models.base import MultimodalVAE
from models.batch import LossOutput, MultimodalBatch
from models.featurize.binning import BinningSpec, featurize_spectra
from models.featurize.fingerprints import DEFAULT_FINGERPRINT_SPEC, FingerprintSpec, parse_fingerprint_spec
from models.featurize.mgf import Spectrum, SpectrumError
from models.networks import spectra as spectra_networks
from models.networks.cpu_matmul import Linear
from models.registry import build_model

FORMAT_VERSION = 1
MLP_NAME = "mlp"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
WEIGHTS_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_MLP_OPTIONS = ("n_bins", "n_bits", "spectrum_hidden")


def featurize_each(
    spectra: Sequence[Spectrum], binning: BinningSpec
) -> tuple[scipy.sparse.csr_matrix, list[int], dict[int, SpectrumError]]:
    """(sparse features of the usable spectra, their positions in ``spectra``, position -> error of the others).

    One vectorized pass when every spectrum is usable; otherwise each spectrum alone, so one bad spectrum does not
    sink the others.
    """
    try:
        return featurize_spectra(spectra, binning, sparse=True), list(range(len(spectra))), {}
    except SpectrumError:
        pass
    good, errors = [], {}
    for i, s in enumerate(spectra):
        try:
            featurize_spectra([s], binning, sparse=True)
            good.append(i)
        except SpectrumError as exc:
            errors[i] = exc
    return featurize_spectra([spectra[i] for i in good], binning, sparse=True), good, errors


class FingerprintMLP(nn.Module):
    """The feed-forward baseline: the spectrum encoder body of the VAEs (Table A.8 style, BatchNorm MLP) followed by
    one linear layer to the fingerprint logits, trained with binary cross-entropy on paired data only.

    ``forward(batch)`` returns the loss like the VAEs do, so the same trainer trains it.
    """

    uses_unpaired = False  # the trainer then feeds it paired batches only

    def __init__(
        self,
        n_bins: int = spectra_networks.N_BINS,
        n_bits: int = spectra_networks.N_BITS,
        spectrum_hidden: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        spec = spectra_networks.modalities(n_bins=n_bins, n_bits=n_bits, spectrum_hidden=spectrum_hidden)["spectrum"]
        self.body = spec.make_body()
        self.out = Linear(spec.feature_dim, n_bits)
        self.model_name = MLP_NAME

    def logits(self, spectrum: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(spectrum))

    def forward(self, batch: MultimodalBatch) -> LossOutput:
        """BCE summed over bits, averaged over the paired samples (the VAEs' fingerprint likelihood term)."""
        if not batch.paired:
            raise ValueError("the MLP baseline learns from paired spectra and fingerprints only")
        bce = nn.functional.binary_cross_entropy_with_logits(
            self.logits(batch.paired["spectrum"]), batch.paired["fingerprint"], reduction="none"
        )
        total = bce.sum(dim=1).mean()
        return LossOutput(total, {"bce": total.detach()})

    def predict_proba(self, spectrum: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(spectrum))


def build_network(name: str, latent_dim: int, overrides: dict[str, Any]) -> nn.Module:
    """A fresh network for the spectra experiment: a registry VAE (``build_model(name, "spectra", ...)``) or the
    ``mlp`` baseline (which takes only ``n_bins``, ``n_bits`` and ``spectrum_hidden``)."""
    if name == MLP_NAME:
        unknown = set(overrides) - set(_MLP_OPTIONS)
        if unknown:
            raise ValueError(f"the mlp baseline takes no {sorted(unknown)}; options: {list(_MLP_OPTIONS)}")
        return FingerprintMLP(**overrides)
    return build_model(name, "spectra", latent_dim=latent_dim, **overrides)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: the first CUDA device when available, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass
class Predictions:
    """Fingerprint predictions for a list of spectra where some may be unusable.

    ``probs``: (N, n_bits) float32, the row of a rejected spectrum is NaN; ``errors``: position -> why rejected.
    """

    probs: np.ndarray
    errors: dict[int, SpectrumError] = field(default_factory=dict)

    def ok(self, position: int) -> bool:
        return position not in self.errors


class SpectraModel:
    """A spectrum <-> fingerprint network with the binning and fingerprint spec it was trained with.

    Attributes:
        name: the model's name (its directory name, or what training called it).
        model_name: the network's registry name (``svae``, ``vaevae`` ...) or ``mlp``.
        model: the network (a :class:`MultimodalVAE`, or :class:`FingerprintMLP`), in eval mode.
        binning: how spectra are featurized.
        fingerprint_spec: the fingerprint the model predicts (and candidates must use).
        latent_dim, overrides: what rebuilds the network (``config.json``).
        card: the model card (free-form JSON: data, split, supervision, epochs, metrics).
        device: where the network runs.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        model_name: str,
        latent_dim: int,
        overrides: dict[str, Any],
        binning: BinningSpec,
        fingerprint_spec: FingerprintSpec | str,
        name: str = "model",
        card: dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.fingerprint_spec = parse_fingerprint_spec(fingerprint_spec)
        n_bins, n_bits = overrides.get("n_bins"), overrides.get("n_bits")
        if n_bins != binning.n_bins or n_bits != self.fingerprint_spec.n_bits:
            raise ValueError(
                f"network sizes n_bins={n_bins}, n_bits={n_bits} do not match the binning ({binning.n_bins} bins) "
                f"and fingerprint {self.fingerprint_spec} ({self.fingerprint_spec.n_bits} bits)"
            )
        self.model = model
        self.model_name = model_name
        self.latent_dim = latent_dim
        self.overrides = dict(overrides)
        self.binning = binning
        self.name = name
        self.card = dict(card or {})
        self.device = resolve_device(device)
        self.model.to(self.device).eval()

    @classmethod
    def create(
        cls,
        model_name: str,
        *,
        binning: BinningSpec | None = None,
        fingerprint_spec: FingerprintSpec | str = DEFAULT_FINGERPRINT_SPEC,
        latent_dim: int = 64,
        name: str = "model",
        device: str | torch.device = "cpu",
        **overrides: Any,
    ) -> SpectraModel:
        """A freshly initialised network sized for ``binning`` (default :class:`BinningSpec`) and
        ``fingerprint_spec``; ``overrides`` size it further (``spectrum_hidden``, ``fingerprint_hidden`` ...)."""
        binning = binning or BinningSpec()
        spec = parse_fingerprint_spec(fingerprint_spec)
        overrides = {k: _jsonable(v) for k, v in overrides.items()}
        overrides = {"n_bins": binning.n_bins, "n_bits": spec.n_bits, **overrides}
        network = build_network(model_name, latent_dim, overrides)
        if isinstance(network, MultimodalVAE):  # recorded, so that a change of the library default cannot alter it
            overrides["prior_expert"] = network.prior_expert
            overrides["expert_variance"] = network.expert_variance
        return cls(
            network, model_name=model_name, latent_dim=latent_dim, overrides=overrides, binning=binning,
            fingerprint_spec=spec, name=name, device=device,
        )  # fmt: skip

    # ----- files ---------------------------------------------------------------------------------------------
    def config(self, weights_dtype: str = "float32") -> dict[str, Any]:
        """The ``config.json`` content."""
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "model": self.model_name,
            "experiment": "spectra",
            "latent_dim": self.latent_dim,
            "network": self.overrides,
            "binning": self.binning.to_dict(),
            "fingerprint_spec": self.fingerprint_spec.text,
            "weights_dtype": weights_dtype,
        }

    def save(self, path: str | Path, *, weights_dtype: str = "float32") -> None:
        """Write the model directory (created if needed): ``weights.pt``, ``config.json``, ``card.json``,
        ``README.md``. ``weights_dtype`` "float16" halves the file; loading casts back to float32."""
        if weights_dtype not in WEIGHTS_DTYPES:
            raise ValueError(f"weights_dtype must be one of {sorted(WEIGHTS_DTYPES)}, not {weights_dtype!r}")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        dtype = WEIGHTS_DTYPES[weights_dtype]
        state = {
            k: (v.detach().cpu().to(dtype) if v.is_floating_point() else v.detach().cpu())
            for k, v in self.model.state_dict().items()
        }
        torch.save(state, path / "weights.pt")
        (path / "config.json").write_text(json.dumps(self.config(weights_dtype), indent=2) + "\n")
        (path / "card.json").write_text(json.dumps(self.card, indent=2) + "\n")
        (path / "README.md").write_text(card_markdown(self.name, self.config(weights_dtype), self.card))

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> SpectraModel:
        """Load a model directory written by :meth:`save` onto ``device`` (``"auto"``: CUDA when available).

        Raises FileNotFoundError for a missing directory or file, ValueError for a config this version cannot read.
        """
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is not a model directory (no config.json)")
        config = json.loads((path / "config.json").read_text())
        if config.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: model format {config.get('format_version')!r} is not {FORMAT_VERSION}")
        card_path = path / "card.json"
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        network_config = dict(config["network"])
        if "prior_expert" in network_config and "expert_variance" not in network_config:
            # saved before the softplus variances (2026-11-29): those experts' raw output is a clamped log-variance
            network_config["expert_variance"] = "exp"
        network = build_network(config["model"], int(config["latent_dim"]), network_config)
        state = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
        own = network.state_dict()
        network.load_state_dict({k: v.to(own[k].dtype) if k in own else v for k, v in state.items()})
        return cls(
            network, model_name=config["model"], latent_dim=int(config["latent_dim"]), overrides=config["network"],
            binning=BinningSpec.from_dict(config["binning"]), fingerprint_spec=config["fingerprint_spec"],
            name=config.get("name") or path.name, card=card, device=device,
        )  # fmt: skip

    # ----- inference -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_features(self, features: np.ndarray | torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """Fingerprint probabilities (N, n_bits) float32 of binned spectra (N, n_bins) (dense or scipy.sparse)."""
        if self.model.training:  # eval() walks every module: a tenth of a small request's time when done each call
            self.model.eval()
        out = []
        for start in range(0, features.shape[0], batch_size):
            block = features[start : start + batch_size]
            if hasattr(block, "toarray"):
                block = block.toarray()
            x = torch.as_tensor(np.asarray(block, dtype=np.float32) if not torch.is_tensor(block) else block)
            out.append(self._probs(x.to(self.device, torch.float32)).cpu().numpy())
        if not out:
            return np.zeros((0, self.fingerprint_spec.n_bits), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.model, MultimodalVAE):
            return self.model.decode(self.model.posterior({"spectrum": x}).mean, ["fingerprint"])["fingerprint"]
        return self.model.predict_proba(x)

    def featurize(self, spectra: Sequence[Spectrum]) -> tuple[Any, list[int], dict[int, SpectrumError]]:
        """:func:`featurize_each` with this model's binning."""
        return featurize_each(spectra, self.binning)

    def predict(self, spectra: Sequence[Spectrum], batch_size: int = 512) -> Predictions:
        """Fingerprint probabilities of every usable spectrum; unusable ones get a NaN row and their error."""
        features, good, errors = self.featurize(spectra)
        probs = np.full((len(spectra), self.fingerprint_spec.n_bits), np.nan, dtype=np.float32)
        if good:
            probs[good] = self.predict_features(features, batch_size)
        return Predictions(probs, errors)

    def predict_fingerprints(self, spectra: Sequence[Spectrum], batch_size: int = 512) -> np.ndarray:
        """Fingerprint probabilities (N, n_bits) float32, batched, in eval mode without gradients.

        Raises :class:`SpectrumError` for the first spectrum that cannot be featurized (use :meth:`predict` to
        keep the others).
        """
        return self.predict_features(featurize_spectra(spectra, self.binning, sparse=True), batch_size)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def card_markdown(name: str, config: dict[str, Any], card: dict[str, Any]) -> str:
    """The model directory's README.md: what the config says, then the card's ``description`` and sections."""
    lines = [f"# Model `{name}`", ""]
    if card.get("description"):
        lines += [str(card["description"]), ""]
    lines += [
        "| setting | value |",
        "| --- | --- |",
        f"| network | `{config['model']}`, latent {config['latent_dim']}, {json.dumps(config['network'])} |",
        f"| fingerprint | `{config['fingerprint_spec']}` |",
        f"| spectrum binning | {json.dumps(config['binning'])} |",
        f"| weights stored as | {config['weights_dtype']} |",
    ]
    for key, value in card.items():
        if key == "description":
            continue
        lines += ["", f"## {key.replace('_', ' ').capitalize()}", ""]
        if isinstance(value, str):
            lines.append(value)
        else:
            lines += ["```json", json.dumps(value, indent=2), "```"]
    return "\n".join(lines) + "\n"


def resolve_model_path(name_or_path: str | Path, data_dir: Path | None = None) -> Path:
    """Where a model lives: ``"default"`` -> the shipped ``models/default/``; an existing path, or anything with a
    path separator -> that path; another name -> ``<data_dir>/models/<name>``.

    Raises ValueError for a bare name when no ``data_dir`` is given.
    """
    text = str(name_or_path)
    if text == "default":
        return DEFAULT_MODEL_DIR
    path = Path(text).expanduser()
    if path.exists() or "/" in text or "\\" in text or isinstance(name_or_path, Path):
        return path
    if data_dir is None:
        raise ValueError(f"model {text!r} is neither 'default' nor a path; give the data directory to look it up")
    return Path(data_dir) / "models" / text
