"""Unpaired fingerprints from a structure library without spectra: a seeded sample of the MOSES molecules
(``molecules/moses/train.csv.gz``, 1.58 M drug-like SMILES; see its README), as a lab's structure database.

Fingerprinting 100k+ molecules takes minutes on one core, so the sample's full (unselected) bits, first InChIKey
blocks included, are cached as ``.npy`` files under ``cache_dir`` once per (spec, sample size, seed). Molecules
whose first InChIKey block is a validation or test structure are dropped at use: the evaluation's structures stay
unseen in every modality.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.rdBase import BlockLogs

from models.featurize.fingerprints import FingerprintSpec, fingerprint_bits, mol_from_smiles, parse_fingerprint_spec

MOSES_FILE = Path("molecules") / "moses" / "train.csv.gz"


def read_smiles(path: str | Path) -> list[str]:
    """The ``SMILES`` column of a (gzip) CSV file."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        return [row["SMILES"] for row in csv.DictReader(f)]


def _featurize(smiles: Iterable[str], spec: FingerprintSpec) -> tuple[np.ndarray, np.ndarray]:
    mols, blocks = [], []
    with BlockLogs():
        for s in smiles:
            try:
                mol = mol_from_smiles(s)
            except ValueError:
                continue
            key = Chem.MolToInchiKey(mol)
            if key:
                mols.append(mol)
                blocks.append(key[:14])
    return fingerprint_bits(mols, spec), np.array(blocks, dtype="U14")


def library_fingerprints(
    data_dir: str | Path,
    spec: FingerprintSpec | str,
    n: int,
    *,
    seed: int = 0,
    exclude_blocks: Iterable[str] = (),
    cache_dir: str | Path = "runs/cache",
) -> np.ndarray:
    """(≤ n, spec.n_bits) uint8 fingerprints of a seeded sample of ``n`` MOSES molecules, without those whose first
    InChIKey block is in ``exclude_blocks`` (and the few RDKit cannot read). The parts' full bits are cached; the
    spec's bit selection is applied on the way out."""
    spec = parse_fingerprint_spec(spec)
    base = spec.base
    tag = hashlib.sha256(f"{base.text}|{n}|{seed}".encode()).hexdigest()[:16]
    cache = Path(cache_dir)
    bits_path, blocks_path = cache / f"moses-{tag}-bits.npy", cache / f"moses-{tag}-blocks.npy"
    if bits_path.is_file() and blocks_path.is_file():
        bits, blocks = np.load(bits_path), np.load(blocks_path)
    else:
        smiles = read_smiles(Path(data_dir) / MOSES_FILE)
        pick = np.sort(np.random.default_rng(seed).choice(len(smiles), min(n, len(smiles)), replace=False))
        bits, blocks = _featurize([smiles[i] for i in pick], base)
        cache.mkdir(parents=True, exist_ok=True)
        np.save(bits_path, bits)
        np.save(blocks_path, blocks)
    keep = ~np.isin(blocks, np.array(sorted(set(exclude_blocks)), dtype="U14"))
    mask = spec.keep_mask()
    bits = bits[keep]
    return np.ascontiguousarray(bits if mask is None else bits[:, mask])
