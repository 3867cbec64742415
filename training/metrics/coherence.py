"""Coherence of generated modalities, judged by oracle classifiers (MMVAE's MNIST-SVHN metrics).

The model side is two small callables, so the metrics depend on no model class:
``reconstruct(observed: dict[str, Tensor]) -> dict[str, Tensor]`` decodes every modality from the observed ones
(e.g. ``model.reconstruct``), ``sample_joint(n) -> dict[str, Tensor]`` decodes n prior draws (``model.sample``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from training.oracles import predict

Reconstruct = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
SampleJoint = Callable[[int], dict[str, torch.Tensor]]


def batches(n: int, batch_size: int) -> list[slice]:
    """Consecutive slices covering 0..n-1."""
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def on(x: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    """``x`` moved to ``device`` (unchanged when None)."""
    return x if device is None else x.to(device)


@torch.no_grad()
def cross_coherence(
    reconstruct: Reconstruct,
    oracles: Mapping[str, nn.Module],
    data: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """For every source modality ``s`` in ``data`` and every other modality ``t`` with an oracle: the share of rows
    whose ``t`` generated from ``s`` alone is classified as the row's label. Keys ``"{s}_to_{t}"``.

    ``data`` rows are aligned with ``labels``; ``device`` is where the inputs go before ``reconstruct``.
    """
    correct = {(s, t): 0 for s in data for t in oracles if t != s}
    n = labels.shape[0]
    for rows in batches(n, batch_size):
        for s in data:
            out = reconstruct({s: on(data[s][rows], device)})
            for t in oracles:
                if t != s:
                    correct[s, t] += (predict(oracles[t], out[t], batch_size) == labels[rows].cpu()).sum().item()
    return {f"{s}_to_{t}": c / n for (s, t), c in correct.items()}


@torch.no_grad()
def joint_coherence(
    sample_joint: SampleJoint, oracles: Mapping[str, nn.Module], n: int = 10000, batch_size: int = 1000
) -> float:
    """Share of ``n`` joint samples from the prior on whose class all oracles agree (MMVAE: 10,000 samples)."""
    agree = 0
    for rows in batches(n, batch_size):
        out = sample_joint(rows.stop - rows.start)
        preds = torch.stack([predict(oracle, out[m], batch_size) for m, oracle in oracles.items()])
        agree += (preds == preds[0]).all(0).sum().item()
    return agree / n
