"""Build a model of the paper by name for an experiment's networks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.base import MultimodalVAE
from models.mmvae import MMVAE
from models.spec import ModalitySpec
from models.svae import PoEVAE
from models.vaevae import JointVAE

# name -> (constructor, fixed keyword arguments): the paper's models and baselines.
MODEL_FACTORIES: dict[str, tuple[Callable[..., MultimodalVAE], dict[str, Any]]] = {
    "svae": (PoEVAE, {"replacement_experts": True, "loss": "svae"}),
    "svae-star": (PoEVAE, {"replacement_experts": True, "loss": "vaevae"}),
    "vaevae-a": (PoEVAE, {"replacement_experts": False, "loss": "vaevae"}),
    "mvae": (PoEVAE, {"replacement_experts": False, "loss": "mvae", "prior_expert": True}),
    "vaevae": (JointVAE, {"loss": "vaevae"}),
    "vaevae-star": (JointVAE, {"loss": "svae"}),
    "jmvae": (JointVAE, {"loss": "jmvae"}),
    "mmvae": (MMVAE, {}),
}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_FACTORIES)

# Keyword arguments that configure the model itself; every other override sizes the experiment's networks.
_MODEL_KWARGS = {"prior_expert", "expert_variance", "subset_terms", "joint_hidden", "k"}


def build_model(
    name: str,
    experiment: str | None = None,
    *,
    modalities: dict[str, ModalitySpec] | None = None,
    latent_dim: int | None = None,
    **overrides: Any,
) -> MultimodalVAE:
    """A model of the registry (``svae``, ``svae-star``, ``vaevae``, ``vaevae-a``, ``vaevae-star``, ``mmvae``,
    ``mvae``, ``jmvae``) on an experiment's networks (``models.networks``) or on given ``modalities``.

    ``latent_dim`` defaults to the experiment's (Appendix A); ``prior_expert``, ``expert_variance``,
    ``subset_terms``, ``joint_hidden`` and ``k`` (MMVAE's importance samples) configure the model where it has
    them; other keyword overrides size the networks (e.g. ``n_bins``, ``spectrum_hidden``, ``paper_code_nets``).
    """
    if name not in MODEL_FACTORIES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    model_kwargs = {k: overrides.pop(k) for k in list(overrides) if k in _MODEL_KWARGS}
    if modalities is None:
        if experiment is None:
            raise ValueError("give an experiment name or the modalities")
        from models.networks import experiment_defaults, experiment_modalities

        modalities = experiment_modalities(experiment, **overrides)
        if latent_dim is None:
            latent_dim = experiment_defaults(experiment)["latent_dim"]
    elif overrides:
        raise ValueError(f"network overrides {sorted(overrides)} need an experiment, not explicit modalities")
    if latent_dim is None:
        raise ValueError("latent_dim is required with explicit modalities")
    factory, fixed = MODEL_FACTORIES[name]
    accepted = {
        JointVAE: {"prior_expert", "expert_variance", "subset_terms", "joint_hidden"},
        PoEVAE: {"prior_expert", "expert_variance", "subset_terms"},
        MMVAE: {"k", "expert_variance"},
    }[factory]
    unknown = set(model_kwargs) - accepted
    if unknown:
        raise ValueError(f"model {name!r} takes no {sorted(unknown)}")
    kwargs = {**model_kwargs, **fixed}
    model = factory(modalities, latent_dim, **kwargs)
    model.model_name = name
    model.experiment = experiment
    return model
