"""Short training runs that show whether a model's posteriors carry information (no collapse to the prior).

A posterior that has collapsed to the prior has KL(q(z|x) || N(0, I)) = 0 for every input: it says nothing about
x, and cross-generation from it is a prior sample. :func:`posterior_kl_run` trains a model on MNIST-Split halves
for a few hundred Adam steps and records that KL on held-out top halves along the way. The test suite pins the
default SVAE with it, and ``benchmarks/posterior_kl.py`` compares parametrisations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models import MultimodalBatch
from models.base import MultimodalVAE
from models.gaussian import LOGVAR_MAX, kl_to_standard
from training.trainer import adam


@dataclass
class KLTrace:
    """KL(q(z|top) || N(0, I)) on the held-out tops (mean over images, nats) after each recorded step, the share
    of the experts' log-variances (every network reading a top) at or above the old head's clamp (18), and the
    training loss terms at the last step."""

    steps: list[int]
    kl_top: list[float]
    at_clamp: list[float]
    last_terms: dict[str, float]


def posterior_kl_run(
    model: MultimodalVAE,
    train_images: torch.Tensor,
    held_out_images: torch.Tensor,
    *,
    steps: int = 300,
    supervision: float = 0.1,
    batch_size: int = 32,
    lr: float = 1e-3,
    record_every: int = 50,
    seed: int = 0,
    unpaired: str = "all",
) -> KLTrace:
    """Train ``model`` (modalities "top", "bottom"; a :class:`models.svae.PoEVAE`) on (N, 1, 28, 28) images in
    [0, 1] and trace the held-out KL.

    Each step draws ``batch_size`` paired images from the first ``supervision * N`` images and ``batch_size``
    unpaired tops and bottoms from all N images (``unpaired="all"``, the paper's code's streams) or from the
    images that are not paired (``"rest"``).
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    top, bottom = train_images[:, :, :14], train_images[:, :, 14:]
    held_out_top = held_out_images[:, :, :14]
    n = train_images.shape[0]
    n_paired = max(1, int(round(supervision * n)))
    first_unpaired = 0 if unpaired == "all" else n_paired
    optimiser = adam(model.parameters(), lr)
    trace = KLTrace([], [], [], {})

    def record(step: int) -> None:
        model.eval()
        with torch.no_grad():
            trace.kl_top.append(float(kl_to_standard(model.posterior({"top": held_out_top})).mean()))
            logvars = torch.stack([q.logvar for q in model.expert_outputs({"top": held_out_top}).values()])
            trace.at_clamp.append(float((logvars >= LOGVAR_MAX - 1e-4).float().mean()))
        trace.steps.append(step)
        model.train()

    record(0)
    for step in range(1, steps + 1):
        paired = torch.randint(0, n_paired, (batch_size,), generator=generator)
        only_top, only_bottom = torch.randint(first_unpaired, n, (2, batch_size), generator=generator)
        out = model.loss(
            MultimodalBatch(
                paired={"top": top[paired], "bottom": bottom[paired]},
                unpaired={"top": top[only_top], "bottom": bottom[only_bottom]},
            )
        )
        optimiser.zero_grad(set_to_none=True)
        out.total.backward()
        optimiser.step()
        if step % record_every == 0 or step == steps:
            record(step)
    trace.last_terms = {k: float(v) for k, v in out.terms.items()}
    return trace


def mnist_images(mnist_npz_images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1]."""
    return torch.tensor(mnist_npz_images, dtype=torch.float32).div(255).unsqueeze(1)
