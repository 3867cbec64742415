"""MassBank featurized for training and evaluation: binned spectra (sparse), one fingerprint per structure, the
split by structure, the candidate pool, and the semi-supervised training data.

Structures are first InChIKey blocks (the 2-D skeleton): stereoisomers are one structure, with the SMILES,
fingerprint and mass of its first record (the fingerprints carry no chirality, so they agree).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import torch

from models.featurize.adducts import DEFAULT_ADDUCT, neutral_mass
from models.featurize.binning import BinningSpec
from models.featurize.fingerprints import FingerprintSpec, fingerprint_bits, parse_fingerprint_spec, select_bits
from models.featurize.mgf import SpectrumError, read_spectra
from models.spectra_model import featurize_each
from training.data.semi import FunctionSource, SemiSupervisedData, TensorSource, n_paired_for
from training.spectra.dataset import MassBankData, Split, load_massbank, split_by_structure

MASSBANK_FILE = Path("massbank") / "massbank-pos-ms2.mgf.gz"


@dataclass
class Structures:
    """The distinct structures of the data (the candidate pool), sorted by monoisotopic mass."""

    blocks: np.ndarray  # first InChIKey blocks (object array of str)
    smiles: np.ndarray
    inchikeys: np.ndarray
    formulas: np.ndarray
    masses: np.ndarray  # float64, ascending
    bits: np.ndarray  # (S, n_bits) uint8

    def __len__(self) -> int:
        return len(self.blocks)


@dataclass
class SpectraData:
    """Featurized MassBank records: row i of ``features`` is record i of ``records``.

    ``structure[i]``: the row of record i's structure in ``structures``; ``query_mass[i]``: the neutral mass of the
    record's molecule from its precursor m/z and adduct (``[M+H]+`` when the adduct is absent or unknown).
    """

    records: MassBankData
    features: scipy.sparse.csr_matrix
    structure: np.ndarray
    structures: Structures
    query_mass: np.ndarray
    split: Split
    binning: BinningSpec
    fingerprint_spec: FingerprintSpec
    dropped: list[SpectrumError] = field(default_factory=list)
    adduct_fallback: int = 0

    def summary(self) -> dict[str, Any]:
        """Counts for reports and model cards."""
        reasons = Counter(e.reason.split(":")[0] for e in self.dropped)
        return {
            **self.records.summary(),
            "not_featurizable": len(self.dropped),
            "not_featurizable_by_reason": dict(reasons.most_common()),
            "used_spectra": len(self.structure),
            "used_structures": len(self.structures),
            "adduct_defaulted_to_M+H": self.adduct_fallback,
            "split": self.split.counts(),
        }

    def with_fingerprint(self, spec: FingerprintSpec | str) -> SpectraData:
        """The same data with the structures' fingerprints of ``spec`` (features and split shared, not copied)."""
        spec = parse_fingerprint_spec(spec)
        bits = fingerprint_bits(list(self.structures.smiles), spec)
        return replace(self, structures=replace(self.structures, bits=bits), fingerprint_spec=spec)

    def train_structures(self) -> np.ndarray:
        """The rows (in ``structures``) of the training split's structures, sorted."""
        return np.unique(self.structure[self.split.train])

    def select_bits(self, min_rate: float = 0.005, max_rate: float = 0.995) -> SpectraData:
        """The same data with only the fingerprint bits that fire in ``min_rate``-``max_rate`` of the TRAINING
        structures (:func:`models.featurize.fingerprints.select_bits`); the selection is part of the spec."""
        spec = select_bits(self.fingerprint_spec, self.structures.bits[self.train_structures()], min_rate, max_rate)
        mask = spec.keep_mask()
        old = self.fingerprint_spec.keep_mask()
        within = mask if old is None else mask[old]  # the kept bits among the bits held now
        bits = np.ascontiguousarray(self.structures.bits[:, within])
        return replace(self, structures=replace(self.structures, bits=bits), fingerprint_spec=spec)

    def dense(self, rows: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Dense float32 features of ``rows`` (a batch: the whole set is 2 GB dense)."""
        return torch.from_numpy(self.features[np.asarray(rows)].toarray())


def load_spectra_data(
    data_dir: str | Path,
    *,
    binning: BinningSpec | None = None,
    fingerprint_spec: FingerprintSpec | str = "morgan2-2048+maccs",
    limit: int | None = None,
    split_seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> SpectraData:
    """MassBank (``data_dir/massbank/massbank-pos-ms2.mgf.gz``) featurized; ``limit``: only the first spectra.

    Records whose spectrum has no peak left after binning are dropped and listed in ``dropped``; the split is by
    structure over the records kept.
    """
    binning = binning or BinningSpec()
    spec = parse_fingerprint_spec(fingerprint_spec)
    records = load_massbank(Path(data_dir) / MASSBANK_FILE, limit=limit)
    features, good, errors = featurize_each([r.spectrum for r in records], binning)
    if errors:
        records = MassBankData([records[i] for i in good], records.rejected, records.source)
    blocks = [r.inchikey_block for r in records]
    first: dict[str, int] = {}
    for i, b in enumerate(blocks):
        first.setdefault(b, i)
    reps = [records[i] for i in first.values()]
    masses = np.array([r.monoisotopic_mass for r in reps])
    order = np.argsort(masses, kind="stable")
    reps = [reps[i] for i in order]
    structures = Structures(
        blocks=_strings([r.inchikey_block for r in reps]),
        smiles=_strings([r.smiles for r in reps]),
        inchikeys=_strings([r.inchikey for r in reps]),
        formulas=_strings([r.formula for r in reps]),
        masses=masses[order],
        bits=fingerprint_bits([r.smiles for r in reps], spec),
    )
    row_of = {b: k for k, b in enumerate(structures.blocks)}
    query_mass, fallback = _query_masses(records)
    return SpectraData(
        records=records,
        features=features,
        structure=np.array([row_of[b] for b in blocks], dtype=np.int64),
        structures=structures,
        query_mass=query_mass,
        split=split_by_structure(records, fractions, split_seed),
        binning=binning,
        fingerprint_spec=spec,
        dropped=list(errors.values()),
        adduct_fallback=fallback,
    )


def _strings(values: Sequence[str]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _query_masses(records: MassBankData) -> tuple[np.ndarray, int]:
    out = np.empty(len(records))
    fallback = 0
    for i, r in enumerate(records):
        try:
            out[i] = neutral_mass(r.spectrum.precursor_mz, r.adduct or DEFAULT_ADDUCT)
        except ValueError:
            out[i] = neutral_mass(r.spectrum.precursor_mz, DEFAULT_ADDUCT)
            fallback += 1
    return out, fallback


def supervision_split(train_structures: np.ndarray, supervision: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(paired, hidden) structure rows: a seeded share ``supervision`` of the training structures is identified."""
    perm = np.random.default_rng(seed).permutation(np.asarray(train_structures))
    k = n_paired_for(len(perm), supervision)
    return np.sort(perm[:k]), np.sort(perm[k:])


def paired_rows(data: SpectraData, supervision: float, seed: int) -> np.ndarray:
    """The training records whose structure is identified at ``supervision`` (as :func:`semi_supervised_data`)."""
    train_rows = data.split.train
    paired_s, _ = supervision_split(np.unique(data.structure[train_rows]), supervision, seed)
    return train_rows[np.isin(data.structure[train_rows], paired_s)]


def read_unpaired_spectra(paths: Sequence[str | Path], binning: BinningSpec) -> tuple[scipy.sparse.csr_matrix, int]:
    """Binned spectra of users' unidentified MGF files (unpaired spectra); returns (features, number rejected)."""
    spectra, rejected = [], 0
    for path in paths:
        for item in read_spectra(path):
            if isinstance(item, SpectrumError):
                rejected += 1
            else:
                spectra.append(item)
    features, good, errors = featurize_each(spectra, binning)
    return features, rejected + len(errors)


def semi_supervised_data(
    data: SpectraData,
    supervision: float,
    seed: int,
    *,
    extra_unpaired: scipy.sparse.csr_matrix | None = None,
    extra_fingerprints: np.ndarray | None = None,
) -> tuple[SemiSupervisedData, dict[str, Any]]:
    """The training data at a supervision level, split by structure (not by spectrum).

    paired: every training spectrum of the identified share of the training structures, with its fingerprint;
    unpaired spectra: every training spectrum of the other training structures (their structure hidden), plus
    ``extra_unpaired`` (e.g. a lab's unidentified spectra); unpaired fingerprints: the other training structures'
    fingerprints, one per structure (molecules without spectra, as a candidate database holds them), plus
    ``extra_fingerprints`` ((N, n_bits) bits of a structure library without spectra, e.g. MOSES molecules).

    Returns the data and the counts (structures and spectra per part).
    """
    train_rows = data.split.train
    train_structures = np.unique(data.structure[train_rows])
    paired_s, hidden_s = supervision_split(train_structures, supervision, seed)
    is_paired = np.isin(data.structure[train_rows], paired_s)
    paired_rows, unpaired_rows = train_rows[is_paired], train_rows[~is_paired]
    fingerprints = torch.from_numpy(data.structures.bits.astype(np.float32))

    features = data.features
    n_extra = 0
    if extra_unpaired is not None and extra_unpaired.shape[0]:
        if extra_unpaired.shape[1] != features.shape[1]:
            raise ValueError(f"extra unpaired spectra have {extra_unpaired.shape[1]} bins, not {features.shape[1]}")
        n_extra = extra_unpaired.shape[0]
        features = scipy.sparse.vstack([features, extra_unpaired], format="csr")
        unpaired_rows = np.concatenate([unpaired_rows, np.arange(len(data.structure), features.shape[0])])

    def dense(rows: np.ndarray):
        return lambda idx: torch.from_numpy(features[rows[idx.numpy()]].toarray())

    paired = {}
    if len(paired_rows):
        paired = {
            "spectrum": FunctionSource(len(paired_rows), dense(paired_rows)),
            "fingerprint": TensorSource(fingerprints, data.structure[paired_rows]),
        }
    unpaired_fingerprints = TensorSource(fingerprints, hidden_s)
    n_extra_fp = 0
    if extra_fingerprints is not None and len(extra_fingerprints):
        if extra_fingerprints.shape[1] != fingerprints.shape[1]:
            raise ValueError(f"extra fingerprints have {extra_fingerprints.shape[1]} bits, not {fingerprints.shape[1]}")
        n_extra_fp = len(extra_fingerprints)
        extra = torch.from_numpy(np.asarray(extra_fingerprints, dtype=np.float32))
        unpaired_fingerprints = TensorSource(torch.cat([fingerprints[torch.as_tensor(hidden_s)], extra]))
    unpaired = {
        "spectrum": FunctionSource(len(unpaired_rows), dense(unpaired_rows)),
        "fingerprint": unpaired_fingerprints,
    }
    counts = {
        "supervision_unit": "training structures (all spectra of an identified structure are paired)",
        "paired_structures": int(len(paired_s)),
        "paired_spectra": int(len(paired_rows)),
        "hidden_structures": int(len(hidden_s)),
        "unpaired_spectra": int(len(unpaired_rows)),
        "unpaired_spectra_from_user_files": n_extra,
        "unpaired_fingerprints": int(len(hidden_s)) + n_extra_fp,
        "unpaired_fingerprints_from_structure_library": n_extra_fp,
    }
    return SemiSupervisedData(paired, unpaired), counts
