"""The ELBO-type objectives of the paper, written against posteriors that each model computes.

Every objective returns a :class:`LossOutput` whose ``total`` is a *negative* bound (to minimise). Each term is
named after what it adds to the loss (``.../recon`` = -log p(x|z) for one z ~ q, ``.../kl`` = a KL divergence),
averaged over the samples of its part of the batch, and ``total`` is the sum of the terms.

Two modalities (x1, x2), posteriors q(z|x1,x2), q(z|x1), q(z|x2) as the model defines them, p(z) = N(0, I):

:func:`svae_loss`, the paper's objective (eq. 19-22; Algorithm 1 with its bold terms), used by SVAE and VAEVAE*::

    paired/recon          -E_q(z|x1,x2)[log p1(x1|z) + log p2(x2|z)]                  eq. 19, line 1
    paired/kl             KL(q(z|x1,x2) || q(z|x1)) + KL(q(z|x1,x2) || q(z|x2))       eq. 19, line 1 (p(z|xi) = q(z|xi))
    paired_unimodal/recon -E_q(z|x1)[log p1(x1|z)] - E_q(z|x2)[log p2(x2|z)]          eq. 19, lines 2-3 (Alg. 1 bold)
    paired_unimodal/kl    KL(q(z|x1) || p(z)) + KL(q(z|x2) || p(z))                   eq. 19, lines 2-3 (Alg. 1 bold)
    unpaired_x1/recon     -E_q(z|x1')[log p1(x1'|z)]                                   eq. 20
    unpaired_x1/kl        KL(q(z|x1') || p(z))                                         eq. 20
    unpaired_x2/...       likewise for x2'                                             eq. 21
    total                 the sum: -L_comb                                              eq. 22

:func:`vaevae_loss`, Wu & Goodman's VAEVAE loss, used by VAEVAE, VAEVAE (a) and SVAE*: the same without the
``paired_unimodal`` terms.

n >= 3 modalities (section 3.5), ``subset_terms``:

- ``"text"`` (default), eq. 29-32 as printed. A subset T of 2 <= |T| < n observed modalities adds
  ``paired_subsets/recon`` -E_q(z|x_T)[sum_{i in T} log p_i(x_i|z)] and ``paired_subsets/kl``
  sum_{|S| = |T|-1} KL(q(z|x_T) || q(z|x_S)) + KL(q(z|x_T) || p(z)), S over ALL subsets of that size (eq. 30 pulls
  q(z|x_i,x_j) towards q(z|x_1), q(z|x_2) and q(z|x_3)); the full set adds the eq. 29 terms above with the
  (n-1)-subsets in place of the single modalities. SVAE's subsets with several PoE rules (eq. 35-36) count each
  term once per rule: "f(q(z|x_i,x_j)) = f(q^i(z|x_i,x_j)) + f(q^j(z|x_i,x_j))".
- ``"code"``, what the paper's code (poe-vaes ``*_three.py``) computes instead: a subset posterior q(z|x_T)
  reconstructs ALL n modalities and is pulled only towards the subsets S inside T, and the PoE models (SVAE,
  SVAE*) use the reversed divergence KL(q(z|x_S) || q(z|x_T)) there. For n = 2 both choices are the same loss.

The text is the default because it is the method the paper states; the code's version is kept as an option
because the paper's numbers for MNIST-Split-3 were produced with it.

:func:`mvae_loss` (MVAE) and :func:`jmvae_loss` (JMVAE, eq. 2) follow. MMVAE's importance-weighted objective lives
in ``models/mmvae.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from models.base import MultimodalVAE, ReconstructionQueue, Subset
from models.batch import LossOutput
from models.gaussian import DiagonalGaussian, kl_divergence, kl_to_standard

SubsetTerms = Literal["text", "code"]
SUBSET_TERMS: tuple[str, ...] = ("text", "code")


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


class Objective:
    """The named terms of one loss. Reconstruction terms are queued and decoded together (one decoder call per
    modality for the whole loss); KL terms are per-sample tensors. :meth:`output` totals the batch means."""

    def __init__(self, model: MultimodalVAE) -> None:
        self.queue = ReconstructionQueue(model)
        self._recon: list[tuple[str, list[int]]] = []
        self._kl: list[tuple[str, torch.Tensor]] = []

    def recon(self, name: str, z: torch.Tensor, x: dict[str, torch.Tensor], modalities: Subset) -> None:
        """Add -sum_{m in modalities} log p_m(x_m | z) under ``name``."""
        self._recon.append((name, [self.queue.add(m, z, x[m]) for m in modalities]))

    def kl(self, name: str, per_sample: torch.Tensor) -> None:
        """Add a per-sample divergence under ``name``."""
        self._kl.append((name, per_sample))

    def output(self, like: torch.Tensor) -> LossOutput:
        self.queue.run()
        values: dict[str, torch.Tensor] = {}
        parts = [(name, -sum(self.queue[h] for h in handles)) for name, handles in self._recon] + self._kl
        for name, per_sample in parts:
            value = per_sample.mean()
            values[name] = values[name] + value if name in values else value
        total = sum(values.values(), torch.zeros((), device=like.device, dtype=like.dtype))
        return LossOutput(total, {k: v.detach() for k, v in values.items()})


def _reference_tensor(enc: EncodedBatch) -> torch.Tensor:
    for x in (*enc.paired_x.values(), *enc.unpaired_x.values()):
        return x
    raise ValueError("empty batch: no paired and no unpaired samples")


def _unpaired_elbos(obj: Objective, enc: EncodedBatch) -> None:
    """eq. 20-21 (eq. 31): -E_q(z|x_m)[log p_m(x_m|z)] + KL(q(z|x_m) || p(z)) on the unpaired x_m."""
    for m, q in enc.unpaired.items():
        obj.recon(f"unpaired_{m}/recon", q.rsample(), enc.unpaired_x, (m,))
        obj.kl(f"unpaired_{m}/kl", kl_to_standard(q))


def _paired_unimodal_elbos(obj: Objective, enc: EncodedBatch) -> None:
    """eq. 19 lines 2-3, the bold terms of Algorithm 1: the unimodal ELBO of every modality on the paired samples."""
    for subset, rules in enc.paired.items():
        if len(subset) == 1:
            for q in rules:
                obj.recon("paired_unimodal/recon", q.rsample(), enc.paired_x, subset)
                obj.kl("paired_unimodal/kl", kl_to_standard(q))


def _paired_joint_terms(
    model: MultimodalVAE, obj: Objective, enc: EncodedBatch, subset_terms: SubsetTerms, reverse_subset_kl: bool
) -> None:
    """eq. 19 line 1 (two modalities) and eq. 29-30 (n modalities): every observed subset T with |T| >= 2.

    ``reverse_subset_kl`` is used with ``subset_terms="code"`` only (the code's PoE models, see the module doc).
    """
    if subset_terms not in SUBSET_TERMS:
        raise ValueError(f"subset_terms must be one of {SUBSET_TERMS}, not {subset_terms!r}")
    n, x = len(model.names), enc.paired_x
    for subset, rules in enc.paired.items():
        k = len(subset)
        if k == 1:
            continue
        full = k == n
        part = "paired" if full else "paired_subsets"
        smaller = [s for s in enc.paired if len(s) == k - 1]
        if subset_terms == "code" and not full:
            smaller = [s for s in smaller if set(s) <= set(subset)]
        decoded = subset if full or subset_terms == "text" else tuple(model.names)
        reverse = reverse_subset_kl and subset_terms == "code" and not full
        for q in rules:
            obj.recon(f"{part}/recon", q.rsample(), x, decoded)
            for s in smaller:
                for r in enc.paired[s]:
                    obj.kl(f"{part}/kl", kl_divergence(r, q) if reverse else kl_divergence(q, r))
            if not full:
                obj.kl(f"{part}/kl", kl_to_standard(q))


def svae_loss(
    model: MultimodalVAE, enc: EncodedBatch, subset_terms: SubsetTerms = "text", reverse_subset_kl: bool = False
) -> LossOutput:
    """The paper's objective (eq. 19-22, Algorithm 1; eq. 29-32 for n >= 3): SVAE and VAEVAE*."""
    obj = Objective(model)
    _paired_joint_terms(model, obj, enc, subset_terms, reverse_subset_kl)
    _paired_unimodal_elbos(obj, enc)
    _unpaired_elbos(obj, enc)
    return obj.output(_reference_tensor(enc))


def vaevae_loss(
    model: MultimodalVAE, enc: EncodedBatch, subset_terms: SubsetTerms = "text", reverse_subset_kl: bool = False
) -> LossOutput:
    """Wu & Goodman's VAEVAE loss: :func:`svae_loss` without the unimodal ELBOs on paired samples. VAEVAE,
    VAEVAE (a), SVAE*."""
    obj = Objective(model)
    _paired_joint_terms(model, obj, enc, subset_terms, reverse_subset_kl)
    _unpaired_elbos(obj, enc)
    return obj.output(_reference_tensor(enc))


def mvae_loss(model: MultimodalVAE, enc: EncodedBatch) -> LossOutput:
    """MVAE's sub-sampled objective: on paired samples the ELBO of the joint PoE posterior plus the ELBO of each
    single modality (each with the N(0, I) prior expert); on unpaired samples the unimodal ELBO."""
    obj = Objective(model)
    if enc.paired_x:
        full = tuple(model.names)
        for subset in [full, *[(m,) for m in model.names]]:
            part = "paired" if subset == full else "paired_unimodal"
            (q,) = enc.paired[subset]
            obj.recon(f"{part}/recon", q.rsample(), enc.paired_x, subset)
            obj.kl(f"{part}/kl", kl_to_standard(q))
    _unpaired_elbos(obj, enc)
    return obj.output(_reference_tensor(enc))


def jmvae_loss(model: MultimodalVAE, enc: EncodedBatch) -> LossOutput:
    """JMVAE, eq. 2: -E_q(z|x)[sum_i log p_i(x_i|z)] + KL(q(z|x) || p(z)) + sum_i KL(q(z|x) || q_i(z|x_i)).

    Paired samples only: the unpaired parts of a batch are ignored (the model cannot learn from them) and
    counted in the term ``ignored_unpaired``.
    """
    obj = Objective(model)
    ref = _reference_tensor(enc)
    if enc.paired_x:
        full = tuple(model.names)
        (q,) = enc.paired[full]
        obj.recon("paired/recon", q.rsample(), enc.paired_x, full)
        obj.kl("paired/kl_prior", kl_to_standard(q))
        for m in model.names:
            (q_m,) = enc.paired[(m,)]
            obj.kl("paired/kl_unimodal", kl_divergence(q, q_m))
    out = obj.output(ref)
    n_ignored = sum(v.shape[0] for v in enc.unpaired_x.values())
    out.terms["ignored_unpaired"] = torch.tensor(float(n_ignored), device=ref.device)
    return out
