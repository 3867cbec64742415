"""Molecules: identity (InChIKey, formula, mass) of known molecules, fingerprint specs and bits, packing, and the
agreement of RDKit's InChIKeys with the MassBank file's INCHIKEY headers."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import MACCSkeys

from models.featurize.fingerprints import (
    DEFAULT_FINGERPRINT_SPEC,
    InvalidMoleculeError,
    fingerprint_bits,
    molecule_from_smiles,
    pack_bits,
    parse_fingerprint_spec,
    select_bits,
    unpack_bits,
)
from models.featurize.mgf import read_spectra

# IUPAC 2016 atomic masses of the most common isotopes
C, H, N, O, E = 12.0, 1.00782503223, 14.00307400443, 15.99491461957, 0.000548579909


def test_caffeine_identity():
    mol = molecule_from_smiles("CN1C=NC2=C1C(=O)N(C(=O)N2C)C")
    assert mol.inchikey == "RYYVLZVUVIJVGH-UHFFFAOYSA-N"
    assert mol.inchikey_block == "RYYVLZVUVIJVGH"
    assert mol.formula == "C8H10N4O2"
    assert mol.monoisotopic_mass == pytest.approx(8 * C + 10 * H + 4 * N + 2 * O, abs=1e-6)
    assert mol.monoisotopic_mass == pytest.approx(194.080376, abs=1e-6)
    assert mol.bits.shape == (2215,) and mol.bits.dtype == np.uint8
    assert molecule_from_smiles(mol.smiles).smiles == mol.smiles  # canonical SMILES is a fixed point


def test_charged_molecule_mass_is_the_sum_of_its_atoms():
    mol = molecule_from_smiles("C[N+](C)(C)C")  # tetramethylammonium, PubChem monoisotopic mass 74.096974
    assert mol.monoisotopic_mass == pytest.approx(4 * C + 12 * H + N, abs=1e-6)
    assert molecule_from_smiles("C[N+](C)(C)C", None).bits.shape == (0,)


def test_spec_parsing():
    spec = parse_fingerprint_spec(DEFAULT_FINGERPRINT_SPEC)
    assert spec.text == "morgan2-2048+maccs" and spec.n_bits == 2048 + 167
    assert parse_fingerprint_spec("MORGAN2 + maccs") == spec
    assert parse_fingerprint_spec("morgan2").text == "morgan2-2048"
    assert parse_fingerprint_spec("morgan3-4096+maccs").n_bits == 4096 + 167
    assert parse_fingerprint_spec("rdkit-1024").text == "rdkit-1024"
    assert parse_fingerprint_spec(spec) is spec
    for bad in ("foo", "morgan2-2048+morgan2-2048", "morgan2-4", "ecfp4", "", "maccs-100"):
        with pytest.raises(ValueError):
            parse_fingerprint_spec(bad)


@pytest.mark.parametrize(
    ("smiles", "counts"),
    [
        # ethanol: radius 0 gives 3 atom environments, radius 1 three more; at radius 2 every environment spans the
        # whole molecule already covered at radius 1, so it adds none
        ("CCO", (3, 6, 6)),
        # benzene: six equal atoms, one new environment per radius up to 2
        ("c1ccccc1", (1, 2, 3)),
    ],
)
def test_morgan_bit_counts_by_hand(smiles, counts):
    assert tuple(int(fingerprint_bits([smiles], f"morgan{r}-2048").sum()) for r in range(3)) == counts


def test_layout_and_maccs_keys():
    mols = ["CCO", "c1ccccc1", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C"]
    both = fingerprint_bits(mols, DEFAULT_FINGERPRINT_SPEC)
    np.testing.assert_array_equal(both[:, :2048], fingerprint_bits(mols, "morgan2-2048"))
    maccs = both[:, 2048:]
    np.testing.assert_array_equal(maccs, fingerprint_bits(mols, "maccs"))
    # key 163: six-membered ring, 164: oxygen, 165: ring atom (RDKit's MACCS table); key 0 is never set
    assert MACCSkeys.smartsPatts[164][0] == "[#8]" and MACCSkeys.smartsPatts[165][0] == "[R]"
    assert maccs[:, [163, 164, 165]].tolist() == [[0, 1, 0], [1, 0, 1], [1, 1, 1]]
    assert maccs[:, 0].sum() == 0
    # the same molecule written differently, or given as an RDKit Mol, has the same bits
    again = fingerprint_bits(["OCC", Chem.MolFromSmiles("C1=CC=CC=C1"), "Cn1cnc2c1c(=O)n(C)c(=O)n2C"])
    np.testing.assert_array_equal(again, both)


def test_invalid_smiles_named_and_rdkit_quiet(capfd):
    for smiles, reason in [("C1CC", "syntax"), ("N(C)(C)(C)(C)C", "valence"), ("", "empty"), ("*CC", "InChI")]:
        with pytest.raises(InvalidMoleculeError) as info:
            molecule_from_smiles(smiles)
        assert repr(smiles) in str(info.value) and reason in str(info.value)
    with pytest.raises(InvalidMoleculeError, match=r"'C1CC'.*molecule 1"):
        fingerprint_bits(["CCO", "C1CC"])
    assert capfd.readouterr().err == ""
    err = pickle.loads(pickle.dumps(InvalidMoleculeError("C1CC", "syntax")))
    assert (err.smiles, err.reason, str(err)) == ("C1CC", "syntax", "invalid SMILES 'C1CC': syntax")


def test_pack_unpack():
    rng = np.random.default_rng(0)
    bits = (rng.random((5, 2215)) < 0.3).astype(np.uint8)
    packed = pack_bits(bits)
    assert packed.shape == (5, 277) and packed.dtype == np.uint8
    np.testing.assert_array_equal(unpack_bits(packed, 2215), bits)
    one = np.zeros(9, np.uint8)
    one[[0, 8]] = 1
    assert pack_bits(one).tolist() == [128, 128]  # big-endian: bit 0 is the high bit of byte 0
    with pytest.raises(ValueError):
        unpack_bits(packed, 2300)


def test_massbank_inchikeys_agree_with_rdkit(shared_data):
    """The file's INCHIKEY against RDKit's from the SMILES: the first block (skeleton) must agree; full keys
    differ where MassBank's key carries other stereo or protonation layers."""
    path = shared_data / "massbank/massbank-pos-ms2.mgf.gz"
    spectra = list(itertools.islice(read_spectra(path), 2000))
    records = [(s.smiles, s.inchikey) for s in spectra if s.inchikey]
    computed = {smiles: molecule_from_smiles(smiles, None).inchikey for smiles, _ in set(records)}
    full = np.mean([computed[smiles] == key for smiles, key in records])
    block = np.mean([computed[smiles][:14] == key[:14] for smiles, key in records])
    print(f"InChIKey agreement over {len(records)} spectra: full key {full:.1%}, first block {block:.1%}")
    assert len(records) > 0.85 * len(spectra)  # nearly every record has its InChIKey
    assert block == 1.0
    assert full > 0.8


def test_pattern_and_layered_parts():
    spec = parse_fingerprint_spec("pattern-1024+layered+maccs")
    assert spec.text == "pattern-1024+layered-2048+maccs" and spec.n_bits == 1024 + 2048 + 167
    bits = fingerprint_bits(["c1ccccc1O", "CCN"], spec)
    assert bits.shape == (2, spec.n_bits) and bits[:, :1024].sum() > 0 and bits[:, 1024:3072].sum() > 0


def test_bit_selection_by_training_rates_round_trips_through_the_spec_text():
    smiles = ["CCO", "c1ccccc1O", "CC(=O)N", "CCCCCCN", "OC(=O)c1ccccc1"]
    full = fingerprint_bits(smiles, "maccs")
    spec = select_bits("maccs", full, min_rate=0.3, max_rate=0.7)
    rate = full.mean(axis=0)
    expect = np.flatnonzero((rate >= 0.3) & (rate <= 0.7))
    np.testing.assert_array_equal(np.flatnonzero(spec.keep_mask()), expect)
    assert spec.n_bits == len(expect) and spec.full_bits == 167 and "@keep:" in spec.text
    again = parse_fingerprint_spec(spec.text.upper())  # case-insensitive like every spec
    assert again == spec and again.n_bits == spec.n_bits
    np.testing.assert_array_equal(fingerprint_bits(smiles, again), full[:, expect])
    # narrowing a selection selects among its own bits; keeping every bit is no selection at all
    narrower = select_bits(spec, full[:, expect], 0.4, 0.6)
    assert set(np.flatnonzero(narrower.keep_mask())) <= set(expect)
    assert select_bits("maccs", full, 0.0, 1.0) == parse_fingerprint_spec("maccs")
    with pytest.raises(ValueError, match="no bit"):
        select_bits("maccs", full, 0.9, 0.1)
    with pytest.raises(ValueError, match="packed mask"):
        parse_fingerprint_spec("maccs@keep:ff")
