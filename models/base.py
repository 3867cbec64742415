"""What every multimodal VAE here shares: one decoder per modality, the likelihood queue, and the
inference API (posterior given any observed subset, reconstruction, cross-generation, prior samples)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations

import torch
from torch import nn

from models.batch import LossOutput, MultimodalBatch
from models.gaussian import EXPERT_VARIANCES, DiagonalGaussian, ExpertVariance, product_of_experts
from models.spec import ModalitySpec

Subset = tuple[str, ...]


def nonempty_subsets(names: Iterable[str]) -> list[Subset]:
    """All non-empty subsets of ``names`` as tuples in the given order, smallest first."""
    names = list(names)
    return [s for k in range(1, len(names) + 1) for s in combinations(names, k)]


class ReconstructionQueue:
    """Collects (modality, z, x) requests and evaluates log p(x|z) with ONE decoder call per modality.

    Loss functions add every reconstruction they need, call :meth:`run`, then read the per-sample
    log-likelihoods back by handle. Batching the decoder calls keeps a step to one decoder pass per modality.
    """

    def __init__(self, model: MultimodalVAE) -> None:
        self.model = model
        self.requests: dict[str, list[tuple[int, torch.Tensor, torch.Tensor]]] = {}
        self.results: dict[int, torch.Tensor] = {}
        self._next = 0

    def add(self, modality: str, z: torch.Tensor, x: torch.Tensor) -> int:
        handle = self._next
        self._next += 1
        self.requests.setdefault(modality, []).append((handle, z, x))
        return handle

    def run(self) -> None:
        for modality, reqs in self.requests.items():
            z = torch.cat([r[1] for r in reqs])
            x = torch.cat([r[2] for r in reqs])
            log_p = self.model.likelihoods[modality].log_prob(self.model.decoders[modality](z), x)
            weight = self.model.likelihood_weights[modality]
            if weight != 1.0:
                log_p = weight * log_p
            sizes = [r[1].shape[0] for r in reqs]
            for (handle, _, _), part in zip(reqs, log_p.split(sizes), strict=True):
                self.results[handle] = part
        self.requests = {}

    def __getitem__(self, handle: int) -> torch.Tensor:
        return self.results[handle]


class MultimodalVAE(nn.Module):
    """Base class. Subclasses define their encoders, :meth:`posterior_rules` and :meth:`loss`.

    Args:
        modalities: the experiment's modalities (``models.networks.experiment_modalities``), in a fixed order.
        latent_dim: L.
        prior_expert: include N(0, I) as an expert in every product of experts (on by default: eq. 18 and 38 make
            q(z | nothing observed) = p(z), and the paper's code puts the prior into every product).
        expert_variance: how the encoders' raw variance output becomes a variance
            (:meth:`DiagonalGaussian.from_params`: "softplus", as the paper's code; "exp" only for old models).
    """

    #: False for models that can only learn from paired samples (JMVAE).
    uses_unpaired: bool = True

    def __init__(
        self,
        modalities: dict[str, ModalitySpec],
        latent_dim: int,
        prior_expert: bool = True,
        expert_variance: ExpertVariance = "softplus",
    ) -> None:
        super().__init__()
        if expert_variance not in EXPERT_VARIANCES:
            raise ValueError(f"expert_variance must be one of {EXPERT_VARIANCES}, not {expert_variance!r}")
        self.expert_variance = expert_variance
        if len(modalities) < 2:
            raise ValueError("a multimodal VAE needs at least two modalities")
        self.names: list[str] = list(modalities)
        self.specs = modalities
        self.latent_dim = latent_dim
        self.prior_expert = prior_expert
        self.decoders = nn.ModuleDict({name: spec.make_decoder(latent_dim) for name, spec in modalities.items()})
        self.likelihoods = {name: spec.likelihood for name, spec in modalities.items()}
        self.likelihood_weights = {name: spec.weight for name, spec in modalities.items()}

    # ----- to be defined by each model -------------------------------------------------------------------
    def loss(self, batch: MultimodalBatch) -> LossOutput:
        raise NotImplementedError

    def posterior_rules(self, observed: dict[str, torch.Tensor]) -> list[DiagonalGaussian]:
        """The posterior(s) q(z | observed) the model defines: one Gaussian, or several PoE rules (n-modal SVAE)."""
        raise NotImplementedError

    # ----- shared API --------------------------------------------------------------------------------------
    def forward(self, batch: MultimodalBatch) -> LossOutput:
        """``model(batch)`` is ``model.loss(batch)`` (so DistributedDataParallel wraps the loss)."""
        return self.loss(batch)

    def subset(self, observed: Iterable[str]) -> Subset:
        """The observed modality names in model order; rejects unknown names."""
        observed = set(observed)
        unknown = observed - set(self.names)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; this model has {self.names}")
        if not observed:
            raise ValueError("observe at least one modality (use sample() for the prior)")
        return tuple(n for n in self.names if n in observed)

    def posterior(self, observed: dict[str, torch.Tensor]) -> DiagonalGaussian:
        """q(z | observed modalities) as one diagonal Gaussian.

        Where the model defines several PoE rules for the subset (n-modal SVAE, eq. 35-36), they are combined by
        their normalised geometric mean (the average of their natural parameters).
        """
        rules = self.posterior_rules(observed)
        if len(rules) == 1:
            return rules[0]
        return product_of_experts(rules, weights=[1.0 / len(rules)] * len(rules))

    def decode(self, z: torch.Tensor, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """The mean of p(x_m|z) for every modality m (probabilities for Bernoulli, ids for text), or only for the
        modalities in ``names`` (a prediction runs only the decoder it needs)."""
        names = self.names if names is None else names
        return {name: self.likelihoods[name].mean(self.decoders[name](z)) for name in names}

    @torch.no_grad()
    def reconstruct(self, observed: dict[str, torch.Tensor], sample: bool = False) -> dict[str, torch.Tensor]:
        """Reconstruct every modality (cross-generation for the unobserved ones) from the observed subset,
        through the posterior mean (or one sample)."""
        q = self.posterior(observed)
        return self.decode(q.rsample() if sample else q.mean)

    @torch.no_grad()
    def sample(self, n: int) -> dict[str, torch.Tensor]:
        """Decode n draws from the prior N(0, I): joint generation."""
        p = next(self.parameters())
        return self.decode(torch.randn(n, self.latent_dim, device=p.device, dtype=p.dtype))

    def num_parameters(self, part: str | None = None) -> int:
        """Number of parameters of the whole model, or of the submodule named ``part`` (e.g. "decoders")."""
        module = self if part is None else getattr(self, part)
        return sum(p.numel() for p in module.parameters())

    def encoder_parameters(self) -> int:
        """Number of parameters of all encoding networks (everything but the decoders)."""
        return self.num_parameters() - self.num_parameters("decoders")

    def _check_paired(self, batch: MultimodalBatch) -> None:
        if batch.paired and set(batch.paired) != set(self.names):
            raise ValueError(f"a paired batch must hold every modality {self.names}; got {sorted(batch.paired)}")
        unknown = set(batch.unpaired) - set(self.names)
        if unknown:
            raise ValueError(f"unpaired batch has unknown modalities {sorted(unknown)}")
