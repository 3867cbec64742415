"""Product-of-experts models without a joint network: SVAE, SVAE*, VAEVAE (a) and MVAE.

SVAE (section 3, eq. 3-6 and 15-18; n modalities eq. 33-38) has n^2 networks q_i^j(z|x_j): q_j^j is the expert
of modality j, and q_i^j (i != j) is the "replacement" expert q_i^*(z|x_j) that stands in for modality i when
it is missing. For the observed subset T of the modalities:

    T = all:         q(z|x)   = PoE({q_i^i(z|x_i) : i in T})                                   (eq. 3, 33)
    otherwise, one rule per source s in T:
                     q^s(z|x_T) = PoE({q_i^i(z|x_i) : i in T} + {q_m^s(z|x_s) : m not in T})    (eq. 4-5, 35-37)

(for n = 2 there is one rule per single modality: q(z|x1) = q_1^1(z|x1) q_2^1(z|x1), i.e. q1 * q2*). Every
product also includes the N(0, I) prior expert by default (``prior_expert``), as eq. 18/38 and the paper's code
have it. (An earlier version turned it off after SVAE "collapsed to the prior" with it; the cause was the
experts' hard-clamped log-variance, whose gradient is zero past the clamp, not the prior expert: see
:meth:`models.gaussian.DiagonalGaussian.from_params` and ``reports/mnist-split-core-fix.md``.)
Without replacement experts the same class is VAEVAE (a) ("setting q*(z|x1) = q*(z|x2) = 1", section 3.3),
and, with the prior expert and its own loss, MVAE.
"""

from __future__ import annotations

import torch
from torch import nn

from models.base import MultimodalVAE, Subset, nonempty_subsets
from models.batch import LossOutput, MultimodalBatch
from models.encoders import GaussianEncoder
from models.gaussian import DiagonalGaussian, ExpertVariance, product_of_experts
from models.losses import EncodedBatch, SubsetTerms, mvae_loss, svae_loss, vaevae_loss
from models.spec import ModalitySpec

LOSSES = ("svae", "vaevae", "mvae")


def _key(target: str, source: str) -> str:
    return f"{target}__from__{source}"


class PoEVAE(MultimodalVAE):
    """Experts q_i^j(z|x_j) combined by products of experts.

    Args:
        modalities: the experiment's modalities.
        latent_dim: L.
        replacement_experts: build the q_i^j, i != j (SVAE); False gives VAEVAE (a) / MVAE.
        loss: "svae" (eq. 19-22), "vaevae" (Wu & Goodman's VAEVAE loss) or "mvae".
        prior_expert: include N(0, I) in every product.
        expert_variance: the experts' variance parametrisation (see :class:`MultimodalVAE`).
        subset_terms: for n >= 3, "text" (eq. 29-32 as printed) or "code" (the paper's code); see models/losses.py.
    """

    def __init__(
        self,
        modalities: dict[str, ModalitySpec],
        latent_dim: int,
        replacement_experts: bool = True,
        loss: str = "svae",
        prior_expert: bool = True,
        expert_variance: ExpertVariance = "softplus",
        subset_terms: SubsetTerms = "text",
    ) -> None:
        super().__init__(modalities, latent_dim, prior_expert, expert_variance)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {loss!r}")
        self.replacement_experts = replacement_experts
        self.loss_name = loss
        self.subset_terms = subset_terms
        self.experts = nn.ModuleDict(
            {
                _key(target, source): GaussianEncoder(modalities[source], latent_dim, expert_variance)
                for source in self.names
                for target in self.names
                if replacement_experts or target == source
            }
        )

    def _targets(self, source: str) -> list[str]:
        return self.names if self.replacement_experts else [source]

    def expert_outputs(self, xs: dict[str, torch.Tensor]) -> dict[tuple[str, str], DiagonalGaussian]:
        """Run every network that reads an observed modality, once: {(target i, source j): q_i^j(z|x_j)}."""
        return {
            (target, source): self.experts[_key(target, source)](x)
            for source, x in xs.items()
            for target in self._targets(source)
        }

    def rules(self, experts: dict[tuple[str, str], DiagonalGaussian], subset: Subset) -> list[DiagonalGaussian]:
        """The PoE rule(s) of q(z | x_subset) from the expert outputs (see the module docstring)."""
        own = [experts[(i, i)] for i in subset]
        missing = [m for m in self.names if m not in subset]
        if not missing or not self.replacement_experts:
            return [product_of_experts(own, prior_expert=self.prior_expert)]
        return [
            product_of_experts(own + [experts[(m, s)] for m in missing], prior_expert=self.prior_expert) for s in subset
        ]

    def posterior_rules(self, observed: dict[str, torch.Tensor]) -> list[DiagonalGaussian]:
        subset = self.subset(observed)
        return self.rules(self.expert_outputs({m: observed[m] for m in subset}), subset)

    def encode_batch(self, batch: MultimodalBatch) -> EncodedBatch:
        """Posteriors for a batch. Each network runs once on the paired and unpaired inputs of its modality
        together (concatenated), and the products of experts are formed in closed form."""
        self._check_paired(batch)
        n_p = batch.n_paired
        experts = self.expert_outputs(batch.stacked_inputs())
        paired: dict[Subset, list[DiagonalGaussian]] = {}
        if n_p:
            paired_experts = {k: q[:n_p] for k, q in experts.items()}
            subsets = nonempty_subsets(self.names)
            if self.loss_name == "mvae":
                subsets = [tuple(self.names), *[(m,) for m in self.names]]
            paired = {s: self.rules(paired_experts, s) for s in subsets}
        unpaired = {}
        for m, x in batch.unpaired.items():
            start = n_p if m in batch.paired else 0
            unpaired_experts = {k: q[start : start + x.shape[0]] for k, q in experts.items() if k[1] == m}
            (unpaired[m],) = self.rules(unpaired_experts, (m,))
        return EncodedBatch(batch.paired, paired, batch.unpaired, unpaired)

    def loss(self, batch: MultimodalBatch) -> LossOutput:
        enc = self.encode_batch(batch)
        if self.loss_name == "mvae":
            return mvae_loss(self, enc)
        objective = svae_loss if self.loss_name == "svae" else vaevae_loss
        # The paper's code reverses the subset KL terms of its PoE models (models/losses.py, subset_terms="code").
        return objective(self, enc, self.subset_terms, reverse_subset_kl=True)
