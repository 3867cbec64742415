"""Models with joint encoder networks: VAEVAE (b), VAEVAE* and JMVAE.

VAEVAE (b) (Wu & Goodman; section 3.3) has one encoder q_i(z|x_i) per modality and a separate network
q(z|x_S) for every subset S of two or more modalities: 2^n - 1 encoders, k n 2^(n-1) parameters for encoders of
k parameters each (Figure 2). The joint networks can only learn from paired samples. VAEVAE* is the same network
trained with the SVAE objective. JMVAE (Suzuki et al.) has the unimodal encoders and one joint network for all
modalities, and learns from paired data only (eq. 2).
"""

from __future__ import annotations

import torch
from torch import nn

from models.base import MultimodalVAE, Subset, nonempty_subsets
from models.batch import LossOutput, MultimodalBatch
from models.encoders import GaussianEncoder, JointEncoder
from models.gaussian import DiagonalGaussian, ExpertVariance, product_of_experts
from models.losses import EncodedBatch, SubsetTerms, jmvae_loss, svae_loss, vaevae_loss
from models.spec import ModalitySpec

LOSSES = ("vaevae", "svae", "jmvae")


def _key(subset: Subset) -> str:
    return "__".join(subset)


class JointVAE(MultimodalVAE):
    """Unimodal encoders plus joint encoder networks.

    Args:
        modalities: the experiment's modalities.
        latent_dim: L.
        loss: "vaevae" (VAEVAE), "svae" (VAEVAE*: the paper's objective) or "jmvae".
        joint_hidden: width of the FC + ReLU layer each modality gets inside a joint network (Appendix A).
        prior_expert: the N(0, I) expert of a product of experts. These models form a product only where a
            subset has no network of its own (JMVAE with n >= 3 modalities); for VAEVAE every posterior is a
            network of its own, so the flag changes nothing there.
        expert_variance: the encoders' variance parametrisation (see :class:`MultimodalVAE`).
        subset_terms: for n >= 3, "text" (eq. 29-32 as printed) or "code" (the paper's code); see models/losses.py.
    """

    def __init__(
        self,
        modalities: dict[str, ModalitySpec],
        latent_dim: int,
        loss: str = "vaevae",
        joint_hidden: int = 512,
        prior_expert: bool = True,
        expert_variance: ExpertVariance = "softplus",
        subset_terms: SubsetTerms = "text",
    ) -> None:
        super().__init__(modalities, latent_dim, prior_expert, expert_variance)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {loss!r}")
        self.loss_name = loss
        self.subset_terms = subset_terms
        self.uses_unpaired = loss != "jmvae"
        self.unimodal = nn.ModuleDict(
            {m: GaussianEncoder(spec, latent_dim, expert_variance) for m, spec in modalities.items()}
        )
        joint_subsets = (
            [tuple(self.names)] if loss == "jmvae" else [s for s in nonempty_subsets(self.names) if len(s) > 1]
        )
        self.joint = nn.ModuleDict(
            {
                _key(s): JointEncoder({m: modalities[m] for m in s}, latent_dim, joint_hidden, expert_variance)
                for s in joint_subsets
            }
        )

    def _posterior(
        self, xs: dict[str, torch.Tensor], subset: Subset, unimodal: dict[str, DiagonalGaussian]
    ) -> DiagonalGaussian:
        if len(subset) == 1:
            return unimodal[subset[0]]
        if _key(subset) in self.joint:
            return self.joint[_key(subset)]({m: xs[m] for m in subset})
        return product_of_experts([unimodal[m] for m in subset], prior_expert=self.prior_expert)

    def posterior_rules(self, observed: dict[str, torch.Tensor]) -> list[DiagonalGaussian]:
        subset = self.subset(observed)
        if len(subset) > 1 and _key(subset) in self.joint:
            return [self.joint[_key(subset)]({m: observed[m] for m in subset})]
        unimodal = {m: self.unimodal[m](observed[m]) for m in subset}
        return [self._posterior(observed, subset, unimodal)]

    def encode_batch(self, batch: MultimodalBatch) -> EncodedBatch:
        """Unimodal encoders run once on paired and unpaired inputs together; joint networks on paired inputs."""
        self._check_paired(batch)
        n_p = batch.n_paired
        inputs = batch.stacked_inputs(include_unpaired=self.uses_unpaired)
        unimodal_all = {m: self.unimodal[m](x) for m, x in inputs.items()}
        paired: dict[Subset, list[DiagonalGaussian]] = {}
        if n_p:
            unimodal_p = {m: q[:n_p] for m, q in unimodal_all.items()}
            subsets = (
                [tuple(self.names), *[(m,) for m in self.names]]
                if self.loss_name == "jmvae"
                else nonempty_subsets(self.names)
            )
            paired = {s: [self._posterior(batch.paired, s, unimodal_p)] for s in subsets}
        unpaired_used = batch.unpaired if self.uses_unpaired else {}
        unpaired = {m: unimodal_all[m][n_p if m in batch.paired else 0 :] for m in unpaired_used}
        return EncodedBatch(batch.paired, paired, batch.unpaired, unpaired)

    def loss(self, batch: MultimodalBatch) -> LossOutput:
        enc = self.encode_batch(batch)
        if self.loss_name == "jmvae":
            return jmvae_loss(self, enc)
        objective = svae_loss if self.loss_name == "svae" else vaevae_loss
        return objective(self, enc, self.subset_terms, reverse_subset_kl=False)
