"""The semi-supervised data container: a paired part and per-modality unpaired parts, and the supervision split.

Supervision level (DESIGN.md): the fraction of the training samples that are *paired* (every modality observed);
the rest are *unpaired*, each keeping ONE modality, shared evenly between the modalities. So with N samples,
supervision s and M modalities there are ``round(s * N)`` paired samples (at least one when s > 0) and about
``(N - round(s * N)) / M`` unpaired samples of each modality, no sample used twice (``unpaired="rest"``).

Difference from the paper's own code (``../shared/data/POE_VAES_PROTOCOL.md``): its ``get_samplers`` keeps
``(1 - share) * N`` shuffled indices as the paired set but draws every modality's unpaired stream from ALL N
indices, paired ones included, so each sample's modalities are all seen unpaired as well. That variant is
``unpaired="all"`` here. The default ``"rest"`` follows the contract: an unpaired sample is one whose other
modalities are *missing*, as in the paper's text ("10% of the training set samples were paired and the
remaining 90% were unpaired").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import torch

UnpairedRule = Literal["rest", "all"]


@runtime_checkable
class Source(Protocol):
    """An indexable set of samples of one modality: ``take(idx)`` returns the rows ``idx`` as one tensor."""

    def __len__(self) -> int: ...

    def take(self, idx: torch.LongTensor) -> torch.Tensor: ...


def _as_index(index: np.ndarray | torch.Tensor | Sequence[int] | None) -> torch.LongTensor | None:
    if index is None:
        return None
    return torch.as_tensor(np.asarray(index), dtype=torch.long)


class TensorSource:
    """Rows of a tensor ``(N, ...)``, optionally only those selected by ``index`` (row i is ``tensor[index[i]]``)."""

    def __init__(self, tensor: torch.Tensor, index: np.ndarray | torch.Tensor | Sequence[int] | None = None) -> None:
        self.tensor = tensor
        self.index = _as_index(index)

    def __len__(self) -> int:
        return len(self.index) if self.index is not None else self.tensor.shape[0]

    def take(self, idx: torch.LongTensor) -> torch.Tensor:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return self.tensor[self.index[idx] if self.index is not None else idx]


class FunctionSource:
    """``n`` samples built on demand by ``fn(idx) -> Tensor`` (e.g. spectra binned when a batch is drawn)."""

    def __init__(self, n: int, fn: Callable[[torch.LongTensor], torch.Tensor]) -> None:
        self.n = n
        self.fn = fn

    def __len__(self) -> int:
        return self.n

    def take(self, idx: torch.LongTensor) -> torch.Tensor:
        return self.fn(torch.as_tensor(idx, dtype=torch.long))


class SubsetSource:
    """The rows ``index`` of any other source (row i is ``base`` row ``index[i]``)."""

    def __init__(self, base: Source, index: np.ndarray | torch.Tensor | Sequence[int]) -> None:
        self.base = base
        self.index = _as_index(index)

    def __len__(self) -> int:
        return len(self.index)

    def take(self, idx: torch.LongTensor) -> torch.Tensor:
        return self.base.take(self.index[torch.as_tensor(idx, dtype=torch.long)])


def subset(source: Source | torch.Tensor, index: np.ndarray | torch.Tensor | Sequence[int]) -> Source:
    """The rows ``index`` of a tensor or a source, as a source."""
    if isinstance(source, torch.Tensor):
        return TensorSource(source, index)
    return SubsetSource(source, index)


@dataclass
class SemiSupervisedData:
    """Training data of a semi-supervised multimodal experiment.

    ``paired``: aligned sources, row i of every modality is the same object (empty dict when nothing is paired).
    ``unpaired``: one independent source per modality (any modality may be missing or empty).
    """

    paired: dict[str, Source] = field(default_factory=dict)
    unpaired: dict[str, Source] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sizes = {name: len(s) for name, s in self.paired.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"paired sources differ in length: {sizes}")
        self.unpaired = {name: s for name, s in self.unpaired.items() if len(s) > 0}
        if all(len(s) == 0 for s in self.paired.values()):
            self.paired = {}

    def n_paired(self) -> int:
        """Number of paired samples."""
        return len(next(iter(self.paired.values()))) if self.paired else 0

    def n_unpaired(self, modality: str) -> int:
        """Number of unpaired samples of ``modality``."""
        source = self.unpaired.get(modality)
        return 0 if source is None else len(source)

    @property
    def modalities(self) -> list[str]:
        """Every modality that occurs, paired ones first."""
        return list(dict.fromkeys([*self.paired, *self.unpaired]))

    def describe(self) -> dict[str, int | dict[str, int]]:
        """Counts per part: ``{"paired": n, "unpaired": {modality: n}}``."""
        return {"paired": self.n_paired(), "unpaired": {m: len(s) for m, s in self.unpaired.items()}}


def n_paired_for(n: int, supervision: float) -> int:
    """``round(supervision * n)`` paired samples, at least one when ``supervision > 0``."""
    if not 0.0 <= supervision <= 1.0:
        raise ValueError(f"supervision must lie in [0, 1], got {supervision}")
    k = int(round(supervision * n))
    return min(n, max(k, 1)) if supervision > 0 and n > 0 else k


def split_supervision(
    n: int, supervision: float, modalities: Sequence[str], seed: int, unpaired: UnpairedRule = "rest"
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Split the sample indices ``0..n-1`` into a paired set and one unpaired set per modality.

    A seeded permutation is drawn; its first :func:`n_paired_for` entries are the paired samples. With
    ``unpaired="rest"`` the remaining entries are dealt round-robin to the modalities (sizes differ by at most
    one; the sets are disjoint and cover 0..n-1 with the paired set). With ``unpaired="all"`` (the paper's code)
    every modality's unpaired set is all n indices. Each returned array is sorted. Deterministic for a seed.
    """
    if not modalities:
        raise ValueError("need at least one modality")
    if unpaired not in ("rest", "all"):
        raise ValueError(f"unpaired must be 'rest' or 'all', got {unpaired!r}")
    perm = np.random.default_rng(seed).permutation(n)
    k = n_paired_for(n, supervision)
    paired = np.sort(perm[:k])
    if unpaired == "all":
        return paired, {m: np.arange(n) for m in modalities}
    rest = perm[k:]
    return paired, {m: np.sort(rest[i :: len(modalities)]) for i, m in enumerate(modalities)}


def make_semi_supervised(
    data: Mapping[str, torch.Tensor | Source], supervision: float, seed: int, unpaired: UnpairedRule = "rest"
) -> SemiSupervisedData:
    """Split aligned, fully paired training data (tensors or sources of equal length) by :func:`split_supervision`."""
    lengths = {m: (x.shape[0] if isinstance(x, torch.Tensor) else len(x)) for m, x in data.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"modalities differ in length: {lengths}")
    n = next(iter(lengths.values()))
    paired_idx, unpaired_idx = split_supervision(n, supervision, list(data), seed, unpaired)
    paired = {m: subset(x, paired_idx) for m, x in data.items()} if len(paired_idx) else {}
    return SemiSupervisedData(paired, {m: subset(x, unpaired_idx[m]) for m, x in data.items()})
