"""MNIST-Split(-3) accuracy: the oracle's accuracy on images reassembled from reconstructed strips.

Given all strips this is the paper's *synergy* (key ``both`` for two strips, ``all`` for more); given one strip
(key = its modality name) the *cross-coherence*. The model side is ``reconstruct(observed) -> dict`` as in
:mod:`training.metrics.coherence`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from training.data.mnist import reassemble
from training.metrics.coherence import Reconstruct, batches, on
from training.oracles import predict


def joint_key(n_parts: int) -> str:
    """The report key of the all-strips accuracy: ``both`` (two strips) or ``all`` (DESIGN.md)."""
    return "both" if n_parts == 2 else "all"


@torch.no_grad()
def split_accuracy(
    reconstruct: Reconstruct,
    oracle: nn.Module,
    parts: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Oracle accuracy on images reassembled (strips in the order of ``parts``, zero rows below as needed) from the
    strips reconstructed given all strips, and given each single strip.

    Returns ``{joint_key(len(parts)): acc, <each part name>: acc}``, accuracies in [0, 1].
    """
    names = list(parts)
    observed_sets = {joint_key(len(names)): names, **{m: [m] for m in names}}
    correct = dict.fromkeys(observed_sets, 0)
    n = labels.shape[0]
    for rows in batches(n, batch_size):
        for key, observed in observed_sets.items():
            out = reconstruct({m: on(parts[m][rows], device) for m in observed})
            images = reassemble([out[m] for m in names])
            correct[key] += (predict(oracle, images, batch_size) == labels[rows].cpu()).sum().item()
    return {key: c / n for key, c in correct.items()}
