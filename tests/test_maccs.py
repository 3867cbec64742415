"""models/featurize/maccs.py against RDKit's own MACCS fingerprint, bit for bit: on the ring systems its cycle
reasoning must get right, on the repository's real structures, and (full data) on MassBank's and 5,000 MOSES
molecules."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import pytest
from rdkit import Chem
from rdkit.Chem import rdMolDescriptors

from models.featurize.maccs import ALL_KEYS, MAX_FUSED_RINGS, _cycles, maccs_bits, maccs_keys
from models.featurize.mgf import Spectrum, read_spectra
from tests.conftest import ROOT, shared_data_dir

# Ring systems where the ring keys' answer depends on cycles that are no perceived ring: envelopes of fused rings
# (naphthalene's 10-cycle, azulene's and indane's 9-cycles, 4+4's 6-cycle), bridged and cage systems, spiro
# junctions (no envelope), rings in separate fragments, heteroatoms only on an envelope, macrocycles either side of
# 14 atoms; plus charges, isotopes, several fragments and aromatic ring counts (keys 49, 125, 166).
RING_CASES = [
    "c1ccc2ccccc2c1",
    "c1ccc2cccc2cc1",
    "C1CCC2CCCC2C1",
    "C1CC2C1CC2",
    "C1CC2CCC1CC2",
    "C1CC2CC3CC1CC(C2)C3",
    "C12C3C4C1C5C2C3C45",
    "C1CCC2(CC1)CCCC2",
    "C1CC1.C1CCC1",
    "O1C2CCCC12",
    "C1CC2CCC1N2",
    "C1CCCCCCC1",
    "C1CCCCCCCCCCCCC1",
    "C1CCCCCCCCCCCCCC1",
    "C1CCCCCCCCCCCCCCC1",
    "C1CC2CCCC3CCCC(C1)C23",
    "c1cc2ccc3ccc4ccc5ccc6ccc1c1c2c3c4c5c61",
    "C1=CC=C2C=C3C=CC=CC3=CC2=C1",
    "O=C1CCCN1",
    "C1CN2CCN1CC2",
    "c1ccc2[nH]ccc2c1",
    "C[N+](C)(C)C.[Cl-]",
    "[13CH3]O",
    "c1ccccc1.c1ccncc1",
    "CC(C)(C)C",
    "C",
]
# C60: a fused system of 32 perceived rings, past MAX_FUSED_RINGS, so its ring keys come from their SMARTS
FULLERENE = (
    "c12c3c4c5c1c1c6c7c2c2c8c3c3c9c4c4c%10c5c5c1c1c6c6c%11c7c2c2c7c8c3c3c8c9c4c4c9c%10c5c5c1c1c6c6c%11c2c2c7c3"
    "c3c8c4c4c9c5c1c1c6c2c3c41"
)


def _mgf_smiles(path: Path) -> list[str]:
    """The distinct structures (SMILES) of an MGF file's spectra."""
    return sorted({s.smiles for s in read_spectra(path) if isinstance(s, Spectrum) and s.smiles})


def _rdkit_keys(mol: Chem.Mol) -> list[int]:
    return list(rdMolDescriptors.GetMACCSKeysFingerprint(mol).GetOnBits())


def _assert_as_rdkit(smiles: list[str]) -> int:
    """Every molecule's keys equal RDKit's; how many molecules were compared."""
    mols = [(s, m) for s, m in ((s, Chem.MolFromSmiles(s)) for s in smiles) if m is not None]
    pairs = [(s, set(maccs_keys(m)), set(_rdkit_keys(m))) for s, m in mols]
    wrong = [(s, sorted(ours ^ theirs)) for s, ours, theirs in pairs if ours != theirs]
    assert not wrong, f"keys that differ from RDKit's: {wrong[:5]}"
    return len(mols)


@pytest.mark.parametrize("smiles", RING_CASES)
def test_ring_systems_as_rdkit(smiles):
    mol = Chem.MolFromSmiles(smiles)
    assert sorted(maccs_keys(mol)) == _rdkit_keys(mol)
    rdkit_bits = rdMolDescriptors.GetMACCSKeysFingerprint(mol).ToBitString()
    assert "".join(map(str, maccs_bits(mol))) == rdkit_bits


def test_cycles_seen_beyond_perceived_rings():
    # naphthalene: two 6-rings and their 10-atom envelope (key 101, a ring of 8 to 14 atoms; key 145, two 6-rings)
    naphthalene = Chem.MolFromSmiles("c1ccc2ccccc2c1")
    assert sorted(len(c) for c in _cycles(naphthalene)) == [6, 6, 10]
    assert {101, 145} <= set(maccs_keys(naphthalene))
    # spiro rings share an atom, not a bond: no envelope, no key 101
    spiro = Chem.MolFromSmiles("C1CCC2(CC1)CCCC2")
    assert sorted(len(c) for c in _cycles(spiro)) == [5, 6]
    assert 101 not in maccs_keys(spiro)


def test_large_fused_systems_take_the_smarts():
    c60 = Chem.MolFromSmiles(FULLERENE)
    assert c60.GetRingInfo().NumRings() > MAX_FUSED_RINGS and _cycles(c60) is None
    assert sorted(maccs_keys(c60)) == _rdkit_keys(c60)


def test_repository_structures_as_rdkit():
    """The structures of the MassBank sample and the example candidate lists (real; a fresh clone has them)."""
    smiles = set(_mgf_smiles(ROOT / "tests" / "data" / "massbank" / "massbank-pos-ms2.mgf.gz"))
    for path in sorted((ROOT / "examples" / "candidates").glob("*.tsv")):
        smiles |= {line.split("\t")[0] for line in path.read_text().splitlines()[1:]}
    assert _assert_as_rdkit(sorted(smiles)) > 500


def test_a_selection_of_keys_is_rdkits_keys_among_them():
    """Keys asked for are found as RDKit finds them, the others never are (a spec's bit selection skips them);
    the selection leaves out SMARTS keys, ring keys and the two keys computed here (125, 166)."""
    selections = [ALL_KEYS - {2, 14, 21, 101, 145, 166}, frozenset({16, 22, 98, 125, 134, 157}), frozenset({44})]
    for smiles in [*RING_CASES, FULLERENE, "Clc1ccc(S(=O)(=O)N)cc1.C1CC1"]:
        mol = Chem.MolFromSmiles(smiles)
        for keys in selections:
            assert sorted(maccs_keys(mol, keys)) == [k for k in _rdkit_keys(mol) if k in keys]
            bits = maccs_bits(mol, keys)
            assert set(bits.nonzero()[0]) == set(_rdkit_keys(mol)) & keys


@pytest.mark.full_data
def test_massbank_and_moses_as_rdkit():
    data = shared_data_dir()
    massbank = _mgf_smiles(data / "massbank" / "massbank-pos-ms2.mgf.gz")
    with gzip.open(data / "molecules" / "moses" / "train.csv.gz", "rt") as f:
        moses = [line.split(",")[0].strip() for line in itertools.islice(f, 1, 5001)]
    assert _assert_as_rdkit(massbank) > 4000
    assert _assert_as_rdkit(moses) == 5000
