"""Molecules to fingerprints (RDKit), with a fingerprint spec string that travels with every model and candidate table.

A spec is parts joined by ``+``; the bits of the parts are concatenated in the order given:

- ``morgan<r>-<n>``: Morgan (ECFP-like) bits of radius r folded to n bits (``morgan2`` = ``morgan2-2048``);
- ``rdkit-<n>``: RDKit path (Daylight-like) fingerprint, paths of up to 7 bonds (``rdkit`` = ``rdkit-2048``);
- ``maccs``: the 166 MACCS substructure keys (RDKit's 167 bits, bit 0 unused);
- ``pattern-<n>``: RDKit's pattern fingerprint (substructure-screening SMARTS patterns, ``pattern`` = 2048 bits);
- ``layered-<n>``: RDKit's layered fingerprint (paths annotated with atom/bond properties, ``layered`` = 2048).

A spec may end in a bit selection, ``@keep:<hex>``: the hex string is the packed (``np.packbits``) mask over the
parts' bits, and only the bits it sets are kept, in order. :func:`select_bits` makes it from training structures
(bits that fire in almost none or almost all of them cannot be learned and only add noise to the ranking); as the
selection is part of the spec text, a model directory and a candidate table that agree on the text agree on the bits.

Why the default is ``morgan2-2048+maccs`` (2,215 bits):
- The paper predicts 2,149 substructure bits selected from a CSI:FingerID-style fingerprint whose definition is
  not public; 2,215 bits is the same size class, so the paper's fingerprint networks (Table A.9) fit unchanged.
- Morgan radius 2 is what the current retrieval benchmarks and models use (MassSpecGym, MIST), so our numbers
  can be held against theirs; 2,048 rather than their 4,096 bits halves the decoder and candidate storage.
- The MACCS keys add named substructure keys (rings, heteroatom groups) like those of the paper's
  CSI:FingerID-style fingerprint, which Morgan's hashed environments fold together.
Morgan bits are computed without chirality, so stereoisomers share a fingerprint (they tie in ranking).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors, rdFingerprintGenerator, rdMolDescriptors
from rdkit.rdBase import BlockLogs

from models.featurize.adducts import ELECTRON_MASS
from models.featurize.maccs import MACCS_BITS, maccs_bits

DEFAULT_FINGERPRINT_SPEC = "morgan2-2048+maccs"
_PART = re.compile(r"^(?:(morgan)(\d)(?:-(\d+))?|(rdkit|pattern|layered)(?:-(\d+))?|(maccs))$")
_KEEP = "@keep:"


@dataclass(frozen=True)
class FingerprintPart:
    """One block of bits: ``kind`` "morgan" (with ``radius``), "rdkit", "pattern", "layered" or "maccs"."""

    kind: str
    n_bits: int
    radius: int = 0

    @property
    def text(self) -> str:
        if self.kind == "morgan":
            return f"morgan{self.radius}-{self.n_bits}"
        return "maccs" if self.kind == "maccs" else f"{self.kind}-{self.n_bits}"

    def generator(self):
        """The RDKit fingerprint generator of this part (None for MACCS, which has none)."""
        if self.kind == "morgan":
            return rdFingerprintGenerator.GetMorganGenerator(radius=self.radius, fpSize=self.n_bits)
        if self.kind == "rdkit":
            return rdFingerprintGenerator.GetRDKitFPGenerator(maxPath=7, fpSize=self.n_bits)
        return None

    def bits(self, mol: Chem.Mol, keep: frozenset[int] | None = None) -> np.ndarray:
        """The bits (uint8 0/1) of the parts without a generator (MACCS, pattern, layered). ``keep``: the bits of
        this part a spec selects (None: all); a bit outside it may be left 0 where that saves work (MACCS)."""
        if self.kind == "maccs":  # RDKit's keys, bit for bit, in less time (models/featurize/maccs.py)
            return maccs_bits(mol) if keep is None else maccs_bits(mol, keep)
        if self.kind == "pattern":
            vector = Chem.PatternFingerprint(mol, fpSize=self.n_bits)
        elif self.kind == "layered":
            vector = Chem.LayeredFingerprint(mol, fpSize=self.n_bits)
        else:
            raise ValueError(f"fingerprint part {self.text} has a generator")
        # through the bit string, 3x faster than DataStructs.ConvertToNumpyArray
        return np.frombuffer(vector.ToBitString().encode(), dtype=np.uint8) - 48


@dataclass(frozen=True)
class FingerprintSpec:
    """A fingerprint definition: parts whose bits are concatenated in order, then optionally a selection of them.

    ``keep``: None (every bit), or the hex of the packed 0/1 mask over the parts' bits (:meth:`keep_mask`).
    """

    parts: tuple[FingerprintPart, ...]
    keep: str | None = None

    @property
    def text(self) -> str:
        """The canonical spec string (``parse_fingerprint_spec(spec.text) == spec``)."""
        base = "+".join(part.text for part in self.parts)
        return base if self.keep is None else f"{base}{_KEEP}{self.keep}"

    @property
    def base(self) -> FingerprintSpec:
        """The same parts without the bit selection."""
        return FingerprintSpec(self.parts)

    @property
    def full_bits(self) -> int:
        """The number of bits of the parts, before the selection."""
        return sum(part.n_bits for part in self.parts)

    def keep_mask(self) -> np.ndarray | None:
        """The (full_bits,) bool mask of the kept bits (read-only), or None when every bit is kept."""
        return self._mask

    @cached_property
    def _mask(self) -> np.ndarray | None:
        if self.keep is None:
            return None
        mask = unpack_bits(np.frombuffer(bytes.fromhex(self.keep), dtype=np.uint8), self.full_bits).astype(bool)
        mask.flags.writeable = False
        return mask

    @cached_property
    def n_bits(self) -> int:
        """The number of bits the spec yields (after the selection)."""
        return self.full_bits if self._mask is None else int(self._mask.sum())

    def __str__(self) -> str:
        return self.text


def parse_fingerprint_spec(text: str | FingerprintSpec) -> FingerprintSpec:
    """Parse ``"morgan2-2048+maccs"``, ``"morgan3-4096"``, ``"pattern-2048+maccs"``, ``"maccs@keep:<hex>"`` ...
    (case and spaces ignored).

    Raises ValueError naming the part that is not understood, or a selection that does not fit the parts.
    """
    if isinstance(text, FingerprintSpec):
        return text
    body, _, keep = text.replace(" ", "").lower().partition(_KEEP)
    parts = []
    for raw in body.split("+"):
        m = _PART.match(raw)
        if not m:
            raise ValueError(
                f"fingerprint part {raw!r} of {text!r} is not one of morgan<radius>-<bits>, rdkit-<bits>, "
                "pattern-<bits>, layered-<bits>, maccs"
            )
        morgan, radius, morgan_bits, kind, kind_bits, maccs = m.groups()
        if morgan:
            part = FingerprintPart("morgan", int(morgan_bits or 2048), int(radius))
        elif kind:
            part = FingerprintPart(kind, int(kind_bits or 2048))
        else:
            part = FingerprintPart("maccs", MACCS_BITS)
        if not 8 <= part.n_bits <= 1 << 16:
            raise ValueError(f"fingerprint part {raw!r}: the number of bits must be in 8 ... 65536")
        if part in parts:
            raise ValueError(f"fingerprint part {raw!r} appears twice in {text!r}")
        parts.append(part)
    spec = FingerprintSpec(tuple(parts))
    if keep:
        spec = _with_mask(spec, _mask_from_hex(keep, spec.full_bits, text))
    return spec


def _mask_from_hex(keep: str, full_bits: int, text: str) -> np.ndarray:
    try:
        packed = np.frombuffer(bytes.fromhex(keep), dtype=np.uint8)
        mask = unpack_bits(packed, full_bits).astype(bool)
    except ValueError:
        raise ValueError(f"the bit selection of {text[:60]!r}... is not a packed mask of {full_bits} bits") from None
    if not mask.any():
        raise ValueError(f"the bit selection of {text[:60]!r}... keeps no bit")
    return mask


def _with_mask(spec: FingerprintSpec, mask: np.ndarray) -> FingerprintSpec:
    """``spec``'s parts with the selection ``mask`` (every bit kept: no selection), canonically encoded."""
    if mask.all():
        return spec.base
    return FingerprintSpec(spec.parts, pack_bits(mask.astype(np.uint8)).tobytes().hex())


def select_bits(
    spec: FingerprintSpec | str, train_bits: np.ndarray, min_rate: float = 0.005, max_rate: float = 0.995
) -> FingerprintSpec:
    """``spec`` restricted to the bits that fire in at least ``min_rate`` and at most ``max_rate`` of the rows of
    ``train_bits`` ((N, spec.n_bits) 0/1 bits of the training structures, one row per structure).

    A spec that already selects bits is narrowed further (the result selects from its parts' full bits).
    Raises ValueError when no bit is left.
    """
    spec = parse_fingerprint_spec(spec)
    train_bits = np.asarray(train_bits)
    if train_bits.ndim != 2 or train_bits.shape[1] != spec.n_bits or not len(train_bits):
        raise ValueError(f"need (N >= 1, {spec.n_bits}) training bits, got shape {train_bits.shape}")
    rate = train_bits.mean(axis=0)
    chosen = (rate >= min_rate) & (rate <= max_rate)
    if not chosen.any():
        raise ValueError(f"no bit of {spec.base.text} fires in {min_rate:g}-{max_rate:g} of the training structures")
    mask = spec.keep_mask()
    full = np.ones(spec.full_bits, dtype=bool) if mask is None else mask.copy()
    full[np.flatnonzero(full)] = chosen
    return _with_mask(spec, full)


class InvalidMoleculeError(ValueError):
    """A SMILES that RDKit cannot turn into a molecule; the message names the SMILES and why."""

    def __init__(self, smiles: str, reason: str):
        self.smiles = smiles
        self.reason = reason
        super().__init__(f"invalid SMILES {smiles!r}: {reason}")

    def __reduce__(self):  # picklable (worker processes, job queues)
        return (self.__class__, (self.smiles, self.reason))


@dataclass(eq=False)
class Molecule:
    """A molecule as the candidate database and the training data store it.

    ``monoisotopic_mass`` is the sum of the atoms' monoisotopic masses as drawn (the PubChem convention): RDKit's
    ``ExactMolWt`` subtracts the electrons of a net charge, which is added back here so that the adduct arithmetic
    of :mod:`models.featurize.adducts` holds for permanently charged molecules too.
    """

    smiles: str
    inchikey: str
    formula: str
    monoisotopic_mass: float
    bits: np.ndarray

    @property
    def inchikey_block(self) -> str:
        """The first InChIKey block (14 characters): the 2-D skeleton, without stereo and charge layers."""
        return self.inchikey[:14]


def mol_from_smiles(smiles: str) -> Chem.Mol:
    """Parse and sanitize a SMILES; raise :class:`InvalidMoleculeError` with RDKit's reason (RDKit logs silenced)."""
    if not isinstance(smiles, str) or not smiles.strip():
        raise InvalidMoleculeError(str(smiles), "empty")
    with BlockLogs():
        mol = Chem.MolFromSmiles(smiles.strip(), sanitize=False)
        if mol is None:
            raise InvalidMoleculeError(smiles, "SMILES syntax not understood")
        if mol.GetNumAtoms() == 0:
            raise InvalidMoleculeError(smiles, "no atoms")
        try:
            Chem.SanitizeMol(mol)
        except Exception as exc:  # RDKit raises several sanitization exception types
            raise InvalidMoleculeError(smiles, str(exc)) from None
    return mol


def molecule_from_smiles(smiles: str, spec: FingerprintSpec | str | None = DEFAULT_FINGERPRINT_SPEC) -> Molecule:
    """Canonical SMILES, InChIKey, formula, monoisotopic mass and fingerprint bits of a SMILES.

    ``spec=None`` skips the fingerprint (``bits`` is then empty), for callers that need only the identity.
    """
    return molecule_from_mol(mol_from_smiles(smiles), spec, smiles)


def molecule_from_mol(
    mol: Chem.Mol, spec: FingerprintSpec | str | None = DEFAULT_FINGERPRINT_SPEC, smiles: str | None = None
) -> Molecule:
    """:func:`molecule_from_smiles` of an already parsed and sanitized molecule (``smiles``, when given, is what
    an :class:`InvalidMoleculeError` names)."""
    with BlockLogs():
        inchikey = Chem.MolToInchiKey(mol)
    if not inchikey:
        reason = "InChI cannot represent this molecule (no InChIKey)"
        raise InvalidMoleculeError(smiles or Chem.MolToSmiles(mol), reason)
    charge = Chem.GetFormalCharge(mol)
    return Molecule(
        smiles=Chem.MolToSmiles(mol),
        inchikey=inchikey,
        formula=rdMolDescriptors.CalcMolFormula(mol),
        monoisotopic_mass=Descriptors.ExactMolWt(mol) + charge * ELECTRON_MASS,
        bits=np.zeros(0, np.uint8) if spec is None else fingerprint_bits([mol], spec)[0],
    )


def fingerprint_bits(
    mols: Sequence[Chem.Mol | str], spec: FingerprintSpec | str = DEFAULT_FINGERPRINT_SPEC
) -> np.ndarray:
    """Fingerprint bits (N, n_bits) uint8 of RDKit molecules or SMILES (an invalid SMILES raises
    :class:`InvalidMoleculeError`, whose message also gives its position in ``mols``)."""
    spec = parse_fingerprint_spec(spec)
    out = np.zeros((len(mols), spec.full_bits), dtype=np.uint8)
    parsed = []
    for i, mol in enumerate(mols):
        if isinstance(mol, str):
            try:
                mol = mol_from_smiles(mol)
            except InvalidMoleculeError as exc:
                raise InvalidMoleculeError(exc.smiles, f"{exc.reason} (molecule {i})") from None
        parsed.append(mol)
    mask = spec.keep_mask()
    offset = 0
    for part in spec.parts:
        gen = part.generator()
        block = out[:, offset : offset + part.n_bits]
        keep = None if mask is None else frozenset(np.flatnonzero(mask[offset : offset + part.n_bits]).tolist())
        for i, mol in enumerate(parsed):
            if gen is not None:
                block[i] = gen.GetFingerprintAsNumPy(mol)
            else:
                block[i] = part.bits(mol, keep)
        offset += part.n_bits
    return out if mask is None else np.ascontiguousarray(out[:, mask])


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack 0/1 bits along the last axis into bytes (``np.packbits``, big-endian bit order, zero padded)."""
    return np.packbits(np.asarray(bits, dtype=np.uint8), axis=-1)


def unpack_bits(packed: np.ndarray, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: (..., ceil(n_bits / 8)) uint8 -> (..., n_bits) 0/1 uint8."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.shape[-1] != (n_bits + 7) // 8:
        raise ValueError(f"{packed.shape[-1]} packed bytes do not hold {n_bits} bits")
    return np.unpackbits(packed, axis=-1, count=n_bits)
