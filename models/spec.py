"""How an experiment describes one modality to the models: its encoder body, decoder and likelihood.

An encoder is split into a *body* (input -> features) and a Gaussian head (features -> mean, log-variance),
so that the VAEVAE joint networks can reuse the body architecture (Appendix A: one more FC + ReLU per
modality, concatenated, then the latent heads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from models.likelihoods import Likelihood


@dataclass
class ModalitySpec:
    """One modality of an experiment.

    Attributes:
        make_body: builds a fresh encoder body: x (batch, *shape) -> features (batch, feature_dim).
        feature_dim: width of the body's output.
        make_decoder: builds a fresh decoder for a latent size: z (batch, latent) -> likelihood parameters.
        likelihood: p(x|z) given the decoder output.
        shape: shape of one sample of this modality, without the batch dimension.
        make_head: optional builder of the Gaussian head (features -> (mean, raw log-variance)); by default
            two Linear layers (the "FC. L, FC. L" of the tables).
        dtype: "float" or "long" (token ids).
        weight: factor on log p(x|z) in every loss (the paper's CUB code weights the image features by 0.002).
        make_joint_features: optional builder of the features a joint network (VAEVAE, JMVAE) reads from this
            modality, of width ``joint_feature_dim``: with it, a joint network concatenates these features across
            its modalities and applies FC(joint_hidden) + ReLU and the heads, as the paper's code does; without
            it, each modality gets its body plus FC(joint_hidden) + ReLU (Appendix A's text).
    """

    make_body: Callable[[], nn.Module]
    feature_dim: int
    make_decoder: Callable[[int], nn.Module]
    likelihood: Likelihood
    shape: tuple[int, ...]
    make_head: Callable[[int, int], nn.Module] | None = None
    dtype: str = "float"
    weight: float = 1.0
    make_joint_features: Callable[[], nn.Module] | None = None
    joint_feature_dim: int = 0
    notes: dict[str, str] = field(default_factory=dict)
