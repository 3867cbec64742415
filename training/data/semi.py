"""The semi-supervised data container: a paired part and per-modality unpaired parts, and the supervision split.

Supervision level (DESIGN.md): the fraction of the training samples that are *paired* (every modality observed):
with N samples and supervision s there are ``round(s * N)`` paired samples (at least one when s > 0). Where the
unpaired streams come from is the ``unpaired`` rule:

- ``"all"`` (the default of the paper's experiments): as the paper's code (``get_samplers``,
  ``../shared/data/POE_VAES_PROTOCOL.md``), every modality's unpaired stream draws from ALL N samples, paired
  ones included, so every sample's modalities are also seen one at a time. At supervision 1 this is what gives
  VAEVAE any KL to the prior N(0, I) at all (its paired loss has none), and it counts SVAE's unimodal ELBO of a
  paired sample twice, as the code does (once paired, eq. 19, once unpaired, eq. 20-21).
- ``"rest"``: the samples that are not paired are dealt round-robin to the modalities, each keeping ONE modality,
  no sample used twice ("10% of the training set samples were paired and the remaining 90% were unpaired").
  Where nothing is left (supervision 1) the streams fall back to all N samples, as with ``"all"``, so that no
  model is left without a prior term.
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
    ``n_objects``: how many distinct objects the parts were drawn from (with ``unpaired="all"`` an object occurs
    in several parts), and ``n_available`` how many the data set had before a ``max_samples`` cut; 0 = not known.
    """

    paired: dict[str, Source] = field(default_factory=dict)
    unpaired: dict[str, Source] = field(default_factory=dict)
    n_objects: int = 0
    n_available: int = 0

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
    n: int, supervision: float, modalities: Sequence[str], seed: int, unpaired: UnpairedRule = "all"
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Split the sample indices ``0..n-1`` into a paired set and one unpaired set per modality.

    A seeded permutation is drawn; its first :func:`n_paired_for` entries are the paired samples. With
    ``unpaired="all"`` (the paper's code) every modality's unpaired set is all n indices. With ``unpaired="rest"``
    the remaining entries are dealt round-robin to the modalities (sizes differ by at most one; the sets are
    disjoint and cover 0..n-1 with the paired set); when no entry remains, every unpaired set is all n indices
    (module doc). Each returned array is sorted. Deterministic for a seed.
    """
    if not modalities:
        raise ValueError("need at least one modality")
    if unpaired not in ("rest", "all"):
        raise ValueError(f"unpaired must be 'rest' or 'all', got {unpaired!r}")
    perm = np.random.default_rng(seed).permutation(n)
    k = n_paired_for(n, supervision)
    paired = np.sort(perm[:k])
    if unpaired == "all" or k == n:
        return paired, {m: np.arange(n) for m in modalities}
    rest = perm[k:]
    return paired, {m: np.sort(rest[i :: len(modalities)]) for i, m in enumerate(modalities)}


def make_semi_supervised(
    data: Mapping[str, torch.Tensor | Source],
    supervision: float,
    seed: int,
    unpaired: UnpairedRule = "all",
    max_samples: int | None = None,
) -> SemiSupervisedData:
    """Split aligned, fully paired training data (tensors or sources of equal length) by :func:`split_supervision`.

    ``max_samples``: first keep that many objects drawn at random (seeded; for quick runs on data stored in class
    order), then split them, so that the supervision level and the unpaired rule hold for the kept objects.
    """
    lengths = {m: (x.shape[0] if isinstance(x, torch.Tensor) else len(x)) for m, x in data.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"modalities differ in length: {lengths}")
    available = next(iter(lengths.values()))
    sources: Mapping[str, torch.Tensor | Source] = data
    if max_samples is not None and max_samples < available:
        kept = np.sort(np.random.default_rng(seed).choice(available, size=max_samples, replace=False))
        sources = {m: subset(x, kept) for m, x in data.items()}
    n = min(available, max_samples) if max_samples is not None else available
    paired_idx, unpaired_idx = split_supervision(n, supervision, list(sources), seed, unpaired)
    paired = {m: subset(x, paired_idx) for m, x in sources.items()} if len(paired_idx) else {}
    parts = {m: subset(x, unpaired_idx[m]) for m, x in sources.items()}
    return SemiSupervisedData(paired, parts, n_objects=n, n_available=available)
