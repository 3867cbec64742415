"""A bounded cache of featurized candidate molecules, so a candidate list sent again is not featurized again.

RDKit costs about 1 ms a molecule (parsing, InChIKey, MACCS keys, Morgan bits); a request with 1,000 candidate
SMILES per spectrum spends a second on them. The cache keys each molecule by the SMILES exactly as sent (a hit
needs no RDKit at all) and by its canonical SMILES (a molecule sent in another spelling skips the InChIKey and
fingerprints, though not the parse). Least recently used entries go first once ``max_size`` keys are held.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from rdkit import Chem

from models.featurize.fingerprints import FingerprintSpec, mol_from_smiles, molecule_from_mol, parse_fingerprint_spec


@dataclass(frozen=True, eq=False)
class CachedMolecule:
    """What ranking and the response need of a candidate: identity and the positions of its set bits."""

    smiles: str  # RDKit canonical
    inchikey: str
    formula: str
    on_bits: np.ndarray  # int32, ascending


def featurize(smiles: str, spec: FingerprintSpec | str, mol: Chem.Mol | None = None) -> CachedMolecule:
    """The :class:`CachedMolecule` of ``smiles`` (or of ``mol``, its parsed molecule, when already at hand).

    Raises :class:`~models.featurize.fingerprints.InvalidMoleculeError` for a SMILES RDKit cannot use.
    """
    molecule = molecule_from_mol(mol if mol is not None else mol_from_smiles(smiles), spec, smiles)
    on_bits = np.flatnonzero(molecule.bits).astype(np.int32)
    return CachedMolecule(molecule.smiles, molecule.inchikey, molecule.formula, on_bits)


class FingerprintCache:
    """Featurized molecules of one fingerprint spec by SMILES as sent and by canonical SMILES; thread-safe."""

    def __init__(self, spec: FingerprintSpec | str, max_size: int = 100_000) -> None:
        self.spec = parse_fingerprint_spec(spec)
        self.max_size = max_size
        self._entries: OrderedDict[str, CachedMolecule] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def molecule(self, smiles: str) -> CachedMolecule:
        """The featurized molecule of ``smiles``, from the cache or computed (and cached).

        Raises :class:`~models.featurize.fingerprints.InvalidMoleculeError` for a SMILES RDKit cannot use
        (invalid SMILES are not cached: they are rare, and the error names the input as sent).
        """
        found = self._get(smiles)
        if found is not None:
            return found
        mol = mol_from_smiles(smiles)
        canonical = Chem.MolToSmiles(mol)
        found = self._get(canonical)
        if found is None:
            found = featurize(smiles, self.spec, mol)
            self._put(canonical, found)
        self._put(smiles, found)
        return found

    def _get(self, key: str) -> CachedMolecule | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def _put(self, key: str, molecule: CachedMolecule) -> None:
        with self._lock:
            self._entries[key] = molecule
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)
