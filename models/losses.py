"""The ELBO-type objectives of the paper, written against posteriors that each model computes.

Every function returns a :class:`LossOutput` whose ``total`` is a *negative* bound (to minimise): each term below
is named after what it adds to the loss (``recon`` = -log p(x|z), ``kl`` = a KL divergence), averaged over the
samples of its part of the batch.

- :func:`vaevae_loss` with ``unimodal_elbo_on_paired=False``: the loss of Wu & Goodman (VAEVAE), used by VAEVAE,
  VAEVAE (a) and SVAE*. With ``True``: the paper's new objective (eq. 19-22, Algorithm 1), used by SVAE and
  VAEVAE*. For n >= 3 modalities both follow eq. 29-32, each term taken once per PoE rule of the subset
  (section 3.5: f(q(z|x_i,x_j)) = f(q^i(z|x_i,x_j)) + f(q^j(z|x_i,x_j))).
- :func:`mvae_loss`: MVAE (Wu & Goodman 2018), ELBO of the joint and of every single modality on paired data.
- :func:`jmvae_loss`: JMVAE (eq. 2), paired data only.
MMVAE's importance-weighted objective lives in ``models/mmvae.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.base import MultimodalVAE, ReconstructionQueue, Subset
from models.batch import LossOutput
from models.gaussian import DiagonalGaussian, kl_divergence, kl_to_standard


@dataclass
class EncodedBatch:
    """The posteriors of one batch.

    ``paired[S]`` holds the PoE rule(s) of q(z | x_S) for the paired samples, for each observed subset S the loss
    needs; ``unpaired[m]`` holds q(z | x_m) for the samples observed in modality m only.
    """

    paired_x: dict[str, torch.Tensor]
    paired: dict[Subset, list[DiagonalGaussian]]
    unpaired_x: dict[str, torch.Tensor]
    unpaired: dict[str, DiagonalGaussian]


class _Terms:
    """Named loss terms, each the batch mean of a per-sample tensor; totalled at the end."""

    def __init__(self) -> None:
        self.values: dict[str, torch.Tensor] = {}

    def add(self, name: str, per_sample: torch.Tensor) -> None:
        value = per_sample.mean()
        self.values[name] = self.values[name] + value if name in self.values else value

    def output(self, like: torch.Tensor) -> LossOutput:
        total = sum(self.values.values(), torch.zeros((), device=like.device, dtype=like.dtype))
        return LossOutput(total, {k: v.detach() for k, v in self.values.items()})


def _reference_tensor(enc: EncodedBatch) -> torch.Tensor:
    for x in (*enc.paired_x.values(), *enc.unpaired_x.values()):
        return x
    raise ValueError("empty batch: no paired and no unpaired samples")


def _add_unpaired_elbos(model: MultimodalVAE, enc: EncodedBatch, queue: ReconstructionQueue, pending: list) -> None:
    """eq. 20-21 (eq. 31 for n modalities): E_q(z|x_m)[log p_m(x_m|z)] - KL(q(z|x_m) || p(z)) on unpaired x_m."""
    for m, q in enc.unpaired.items():
        pending.append((f"unpaired_{m}/recon", [queue.add(m, q.rsample(), enc.unpaired_x[m])]))
        pending.append((f"unpaired_{m}/kl", kl_to_standard(q)))


def _finish(queue: ReconstructionQueue, pending: list, enc: EncodedBatch) -> LossOutput:
    """Run the queued decoder calls, then total the terms (recon terms are lists of handles)."""
    queue.run()
    terms = _Terms()
    for name, value in pending:
        if isinstance(value, list):
            value = -sum(queue[h] for h in value)
        terms.add(name, value)
    return terms.output(_reference_tensor(enc))


def vaevae_loss(model: MultimodalVAE, enc: EncodedBatch, unimodal_elbo_on_paired: bool) -> LossOutput:
    """VAEVAE's loss, or with ``unimodal_elbo_on_paired`` the paper's SVAE objective (eq. 19-22).

    Paired samples, all n modalities observed (eq. 19 first line; eq. 29):
        E_q(z|x_1..n)[sum_i log p_i(x_i|z)] - sum_{S: |S| = n-1} KL(q(z|x_1..n) || q(z|x_S))
    For n = 2 the subsets S are the single modalities: KL(q(z|x1,x2) || q(z|x1)) + KL(q(z|x1,x2) || q(z|x2)),
    the conditional priors p(z|x_i) of eq. 25-26 replaced by q(z|x_i) as the paper does.
    For n >= 3, every subset T with 2 <= |T| < n adds (eq. 30)
        E_q(z|x_T)[sum_{i in T} log p_i(x_i|z)] - sum_{S: |S| = |T|-1} KL(q(z|x_T) || q(z|x_S)) - KL(q(z|x_T) || p(z)).
    SVAE / VAEVAE* only (the bold terms of Algorithm 1; eq. 19 second and third lines): the unimodal ELBO of every
    modality on the paired samples, E_q(z|x_i)[log p_i(x_i|z)] - KL(q(z|x_i) || p(z)).
    Unpaired samples (eq. 20-21, 31): the unimodal ELBO.
    """
    names = model.names
    n = len(names)
    queue, pending = ReconstructionQueue(model), []
    x = enc.paired_x
    if x:
        for subset, rules in enc.paired.items():
            k = len(subset)
            if k == 1:
                if not unimodal_elbo_on_paired:
                    continue
                (m,) = subset
                for q in rules:
                    pending.append(("paired_unimodal/recon", [queue.add(m, q.rsample(), x[m])]))
                    pending.append(("paired_unimodal/kl", kl_to_standard(q)))
                continue
            smaller = [s for s in enc.paired if len(s) == k - 1]
            part = "paired" if k == n else "paired_subsets"
            for q in rules:
                z = q.rsample()
                pending.append((f"{part}/recon", [queue.add(m, z, x[m]) for m in subset]))
                for s in smaller:
                    for r in enc.paired[s]:
                        pending.append((f"{part}/kl", kl_divergence(q, r)))
                if k < n:
                    pending.append((f"{part}/kl", kl_to_standard(q)))
    _add_unpaired_elbos(model, enc, queue, pending)
    return _finish(queue, pending, enc)


def mvae_loss(model: MultimodalVAE, enc: EncodedBatch) -> LossOutput:
    """MVAE's sub-sampled objective: on paired samples the ELBO of the joint PoE posterior plus the ELBO of each
    single modality (each with the N(0, I) prior expert); on unpaired samples the unimodal ELBO."""
    queue, pending = ReconstructionQueue(model), []
    x = enc.paired_x
    if x:
        full = tuple(model.names)
        for subset in [full, *[(m,) for m in model.names]]:
            part = "paired" if subset == full else "paired_unimodal"
            (q,) = enc.paired[subset]
            z = q.rsample()
            pending.append((f"{part}/recon", [queue.add(m, z, x[m]) for m in subset]))
            pending.append((f"{part}/kl", kl_to_standard(q)))
    _add_unpaired_elbos(model, enc, queue, pending)
    return _finish(queue, pending, enc)


def jmvae_loss(model: MultimodalVAE, enc: EncodedBatch) -> LossOutput:
    """JMVAE, eq. 2: E_q(z|x)[sum_i log p_i(x_i|z)] - KL(q(z|x) || p(z)) - sum_i KL(q(z|x) || q_i(z|x_i)).

    Paired samples only: the unpaired parts of a batch are ignored (the model cannot learn from them) and
    counted in the term ``ignored_unpaired``.
    """
    queue, pending = ReconstructionQueue(model), []
    x = enc.paired_x
    ref = _reference_tensor(enc)
    if x:
        (q,) = enc.paired[tuple(model.names)]
        z = q.rsample()
        pending.append(("paired/recon", [queue.add(m, z, x[m]) for m in model.names]))
        pending.append(("paired/kl_prior", kl_to_standard(q)))
        for m in model.names:
            (q_m,) = enc.paired[(m,)]
            pending.append(("paired/kl_unimodal", kl_divergence(q, q_m)))
    out = _finish(queue, pending, enc)
    n_ignored = sum(v.shape[0] for v in enc.unpaired_x.values())
    out.terms["ignored_unpaired"] = torch.tensor(float(n_ignored), device=ref.device)
    return out
