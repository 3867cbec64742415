"""MMVAE (Shi et al. 2019): a mixture of unimodal experts, q(z|x_1..M) = 1/M sum_m q_m(z|x_m), trained with the
importance-weighted bound and the DReG gradient estimator (Tucker et al. 2019), as MMVAE's ``m_dreg_looser``.

For paired samples, with K draws z_k ~ q_m(z|x_m) from each expert m (stratified sampling of the mixture):
    log w_mk = log p(z_mk) + sum_n log p_n(x_n|z_mk) - log (1/M sum_m' q_m'(z_mk|x_m'))
    bound    = 1/M sum_m sum_k w~_mk log w_mk,   w~ = softmax_k(log w) (held constant)
For unpaired samples of modality m (the mixture reduced to its observed expert, alpha_i = 0 for the missing one):
    log w_k = log p(z_k) + log p_m(x_m|z_k) - log q_m(z_k|x_m).
DReG: q's parameters are detached inside log q, and the gradient reaching z is multiplied by w~ once more (a hook),
which gives the doubly reparameterised gradient of the IWAE bound.
The decoders always see 2-D latents: the K samples are flattened into the batch dimension.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from models.base import MultimodalVAE, ReconstructionQueue
from models.batch import LossOutput, MultimodalBatch
from models.encoders import GaussianEncoder
from models.gaussian import DiagonalGaussian
from models.spec import ModalitySpec


@dataclass(frozen=True)
class GaussianMixture:
    """An equal-weight mixture of diagonal Gaussians: MMVAE's posterior given several modalities."""

    components: tuple[DiagonalGaussian, ...]

    @property
    def mean(self) -> torch.Tensor:
        return torch.stack([c.mean for c in self.components]).mean(0)

    @property
    def logvar(self) -> torch.Tensor:
        """Log of the mixture's (moment-matched) per-dimension variance."""
        second = torch.stack([c.var + c.mean**2 for c in self.components]).mean(0)
        return torch.log(second - self.mean**2)

    def rsample(self) -> torch.Tensor:
        """One draw per sample from a uniformly chosen component."""
        draws = torch.stack([c.rsample() for c in self.components])  # (M, B, L)
        pick = torch.randint(len(self.components), (draws.shape[1],), device=draws.device)
        return draws[pick, torch.arange(draws.shape[1], device=draws.device)]


def _repeat(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, ...) -> (k*B, ...), sample-major like z.reshape(k*B, L) of a (k, B, L) tensor."""
    return x.unsqueeze(0).expand(k, *x.shape).reshape(k * x.shape[0], *x.shape[1:])


class MMVAE(MultimodalVAE):
    """Mixture-of-experts multimodal VAE.

    Args:
        modalities: the experiment's modalities.
        latent_dim: L.
        k: importance samples per expert (MMVAE used 30 on MNIST-SVHN).
        expert_variance: the encoders' variance parametrisation (see :class:`MultimodalVAE`).
    """

    def __init__(
        self, modalities: dict[str, ModalitySpec], latent_dim: int, k: int = 10, expert_variance: str = "softplus"
    ) -> None:
        # A mixture has no product of experts, so no prior expert either.
        super().__init__(modalities, latent_dim, prior_expert=False, expert_variance=expert_variance)
        self.k = k
        self.unimodal = nn.ModuleDict(
            {m: GaussianEncoder(spec, latent_dim, expert_variance) for m, spec in modalities.items()}
        )

    def posterior_rules(self, observed: dict[str, torch.Tensor]) -> list[DiagonalGaussian]:
        """The mixture's components for the observed modalities."""
        return [self.unimodal[m](observed[m]) for m in self.subset(observed)]

    def posterior(self, observed: dict[str, torch.Tensor]) -> DiagonalGaussian | GaussianMixture:  # type: ignore[override]
        rules = self.posterior_rules(observed)
        return rules[0] if len(rules) == 1 else GaussianMixture(tuple(rules))

    def loss(self, batch: MultimodalBatch) -> LossOutput:
        self._check_paired(batch)
        n_p, k = batch.n_paired, self.k
        q_all = {m: self.unimodal[m](x) for m, x in batch.stacked_inputs().items()}
        queue = ReconstructionQueue(self)
        pending = []  # (term name, z (k, B, L), log q(z) (k, B), {modality: handle})
        if n_p:
            q_p = {m: q[:n_p] for m, q in q_all.items()}
            detached = [q.detach() for q in q_p.values()]
            for q in q_p.values():
                z = q.rsample(k)  # (k, B, L)
                log_q = torch.logsumexp(torch.stack([d.log_prob(z) for d in detached]), 0) - math.log(len(detached))
                flat = z.reshape(k * n_p, -1)
                handles = {n: queue.add(n, flat, _repeat(batch.paired[n], k)) for n in self.names}
                pending.append(("paired/dreg", z, log_q, handles))
        for m, x in batch.unpaired.items():
            q = q_all[m][n_p:] if n_p else q_all[m]
            z = q.rsample(k)
            handles = {m: queue.add(m, z.reshape(k * x.shape[0], -1), _repeat(x, k))}
            pending.append((f"unpaired_{m}/dreg", z, q.detach().log_prob(z), handles))
        queue.run()
        values: dict[str, list[torch.Tensor]] = {}
        for name, z, log_q, handles in pending:
            log_pz = -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1)
            log_px = sum(queue[h].view(k, -1) for h in handles.values())
            log_w = log_pz + log_px - log_q  # (k, B)
            with torch.no_grad():
                w = torch.softmax(log_w, dim=0)
            if z.requires_grad:
                z.register_hook(lambda grad, w=w: w.unsqueeze(-1) * grad)
            values.setdefault(name, []).append(-(w * log_w).sum(0).mean())
        terms = {name: torch.stack(v).mean() for name, v in values.items()}
        ref = next(iter(q_all.values())).mean
        total = sum(terms.values(), torch.zeros((), device=ref.device, dtype=ref.dtype))
        return LossOutput(total, {name: t.detach() for name, t in terms.items()})
