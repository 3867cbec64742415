"""The structure library index (training/spectra/library.py): formulas and masses against RDKit on real SMILES,
per-formula candidates deduplicated by first InChIKey block, the on-disk caches, rebuild on changed sources."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors, rdMolDescriptors

from models.featurize.fingerprints import fingerprint_bits, pack_bits
from training.spectra.library import MOSES_SOURCES, StructureLibrary, smiles_of_source

pytestmark = pytest.mark.full_data  # MOSES molecules (../shared/data/molecules)

SPEC = "morgan2-256+maccs"
# two records of one structure (stereo written differently), one other structure, one record without SMILES
MGF = """BEGIN IONS
TITLE=A1
PEPMASS=47.0491
SMILES=CCO
ADDUCT=[M+H]+
10.0 1
20.0 2
30.0 3
END IONS
BEGIN IONS
TITLE=A2
PEPMASS=47.0491
SMILES=OCC
10.0 1
END IONS
BEGIN IONS
TITLE=A3
PEPMASS=181.0707
SMILES=C[C@H](N)C(=O)O
10.0 1
END IONS
BEGIN IONS
TITLE=A4
PEPMASS=100.0
10.0 1
END IONS
"""


def _real_moses_smiles(shared_data: Path, n: int) -> list[str]:
    with gzip.open(shared_data / MOSES_SOURCES[1], "rt") as f:
        return [line.strip() for line in itertools.islice(f, 1, n + 1)]


def _write_csv(path: Path, smiles: list[str]) -> Path:
    with gzip.open(path, "wt") as f:
        f.write("SMILES\n" + "\n".join(smiles) + "\n")
    return path


@pytest.fixture
def sources(tmp_path, shared_data) -> list[Path]:
    mgf = tmp_path / "massbank.mgf"
    mgf.write_text(MGF)
    moses = _real_moses_smiles(shared_data, 300)
    # dimethyl ether: an isomer of ethanol; the D-alanine and alanine written without stereo: one block with A3
    extra = ["COC", "C[C@@H](N)C(=O)O", "CC(N)C(=O)O", "not a smiles"]
    return [mgf, _write_csv(tmp_path / "moses.csv.gz", moses + extra)]


def test_source_reading(sources):
    assert smiles_of_source(sources[0]) == ["CCO", "OCC", "C[C@H](N)C(=O)O"]  # distinct SMILES as written
    assert smiles_of_source(sources[1])[-1] == "not a smiles"


def test_formula_and_mass_match_rdkit_on_real_smiles(sources, tmp_path):
    library = StructureLibrary.build(sources, tmp_path / "cache", workers=1)
    manifest = library.manifest()
    assert manifest["molecules_read"] == 3 + 300 + 4
    assert manifest["unparsable"] == 1 and len(library) == 306
    for i in range(len(library)):
        mol = Chem.MolFromSmiles(library.smiles[i])
        assert library.formulas[library.formula_of[i]] == rdMolDescriptors.CalcMolFormula(mol)
        assert library.masses[i] == pytest.approx(Descriptors.ExactMolWt(mol), abs=1e-9)  # all neutral
    assert np.all(np.diff(library.formula_of) >= 0)


def test_rows_of_formula_and_candidates(sources, tmp_path):
    library = StructureLibrary.build(sources, tmp_path / "cache", workers=1)
    assert sorted(library.smiles[library.rows_of_formula("C2H6O")]) == ["CCO", "COC", "OCC"]
    assert len(library.rows_of_formula("C99H2")) == 0

    cands = library.formula_candidates("C2H6O", SPEC)
    # CCO and OCC are one structure; ethanol is represented by its first molecule in source order (MassBank's)
    assert sorted(cands.blocks) == sorted(Chem.MolToInchiKey(Chem.MolFromSmiles(s))[:14] for s in ("CCO", "COC"))
    assert list(cands.blocks) == sorted(cands.blocks)
    expected = pack_bits(fingerprint_bits(list(cands.smiles), SPEC))
    np.testing.assert_array_equal(cands.packed_bits, expected)
    assert "CCO" in set(cands.smiles)
    # L-, D- and unspecified alanine: three molecules, one structure (MOSES molecules weigh 250-350 Da)
    assert len(library.rows_of_formula("C3H7NO2")) == 3
    alanine = library.formula_candidates("C3H7NO2", SPEC)
    assert list(alanine.smiles) == ["C[C@H](N)C(=O)O"]


def test_caches_on_disk(sources, tmp_path):
    cache = tmp_path / "cache"
    built = StructureLibrary.open(sources, cache, workers=1)
    first = built.formula_candidates("C2H6O", SPEC)
    assert (cache / "formulas" / SPEC / "C2H6O.npz").is_file()
    loaded = StructureLibrary.open(sources, cache, workers=1)  # same sources: read, not rebuilt
    assert loaded.manifest()["build_seconds"] == built.manifest()["build_seconds"]
    np.testing.assert_array_equal(loaded.smiles, built.smiles)
    np.testing.assert_array_equal(loaded.masses, built.masses)
    again = loaded.formula_candidates("C2H6O", SPEC)
    np.testing.assert_array_equal(again.blocks, first.blocks)
    np.testing.assert_array_equal(again.packed_bits, first.packed_bits)

    sources[0].write_text(MGF.replace("SMILES=CCO", "SMILES=CCCO"))  # a changed source: rebuilt
    rebuilt = StructureLibrary.open(sources, cache, workers=1)
    assert "CCCO" in set(rebuilt.smiles)


def test_process_pool_gives_the_same_index(sources, tmp_path, monkeypatch):
    monkeypatch.setattr("training.spectra.library._CHUNK", 100)
    serial = StructureLibrary.build(sources, tmp_path / "a", workers=1)
    pooled = StructureLibrary.build(sources, tmp_path / "b", workers=2)
    np.testing.assert_array_equal(serial.smiles, pooled.smiles)
    np.testing.assert_array_equal(serial.masses, pooled.masses)
