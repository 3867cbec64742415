"""The batch every model trains on, and the loss it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class MultimodalBatch:
    """A training batch: a paired part (every modality of the same objects) and unpaired parts.

    ``paired`` maps each modality name to a tensor of the same batch size; ``unpaired`` maps a modality to a batch
    of samples for which only that modality is observed. Any part may be missing or empty (batch size 0).
    """

    paired: dict[str, torch.Tensor] = field(default_factory=dict)
    unpaired: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.paired = {k: v for k, v in self.paired.items() if v is not None and v.shape[0] > 0}
        self.unpaired = {k: v for k, v in self.unpaired.items() if v is not None and v.shape[0] > 0}
        sizes = {v.shape[0] for v in self.paired.values()}
        if len(sizes) > 1:
            raise ValueError(
                f"paired tensors differ in batch size: { ({k: v.shape[0] for k, v in self.paired.items()}) }"
            )

    @property
    def n_paired(self) -> int:
        return next(iter(self.paired.values())).shape[0] if self.paired else 0

    def n_unpaired(self, modality: str) -> int:
        x = self.unpaired.get(modality)
        return 0 if x is None else x.shape[0]

    def stacked_inputs(self, include_unpaired: bool = True) -> dict[str, torch.Tensor]:
        """Per modality, the paired rows followed by that modality's unpaired rows: one tensor, so that each
        encoder network reads all of its inputs in a single pass."""
        unpaired = self.unpaired if include_unpaired else {}
        out = {}
        for m in dict.fromkeys([*self.paired, *unpaired]):
            parts = [t for t in (self.paired.get(m), unpaired.get(m)) if t is not None]
            out[m] = parts[0] if len(parts) == 1 else torch.cat(parts)
        return out

    def to(self, device: torch.device | str) -> MultimodalBatch:
        return MultimodalBatch(
            {k: v.to(device, non_blocking=True) for k, v in self.paired.items()},
            {k: v.to(device, non_blocking=True) for k, v in self.unpaired.items()},
        )


@dataclass
class LossOutput:
    """``total``: the scalar to minimise (a negative ELBO-type bound); ``terms``: its named parts, detached."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
