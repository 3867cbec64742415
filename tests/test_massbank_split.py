"""The MassBank records and their split by structure (first InChIKey block): no structure in two parts, every
record in exactly one, counts that add up, deterministic, and a JSON file that reproduces the split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.featurize.mgf import Spectrum, read_spectra
from training.spectra.dataset import PARTS, load_massbank, read_split, split_by_structure, write_split

MASSBANK = "massbank/massbank-pos-ms2.mgf.gz"


def _check_partition(split, records):
    keys = [r.inchikey_block for r in records]
    parts = [split.part(name) for name in PARTS]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(len(records)))
    block_sets = [set(split.blocks[name]) for name in PARTS]
    for i in range(3):
        assert {keys[j] for j in parts[i]} == block_sets[i]
        for k in range(i + 1, 3):
            assert not block_sets[i] & block_sets[k]
    counts = split.counts()
    assert sum(c["spectra"] for c in counts.values()) == len(records)
    assert sum(c["structures"] for c in counts.values()) == len(set(keys))
    return counts


@pytest.fixture(scope="module")
def first_records(shared_data):
    return load_massbank(shared_data / MASSBANK, limit=2000)


@pytest.mark.full_data
def test_first_records(first_records):
    summary = first_records.summary()
    assert summary["spectra_read"] == 2000
    assert summary["spectra"] + summary["rejected"] == 2000
    r = first_records[0]
    assert (r.title, r.inchikey, r.adduct, r.instrument) == (
        "MSBNK-AAFC-AC000007",
        "CTXQVLLVFBNZKL-YVEDVMJTSA-N",
        "[M+H]+",
        "LC-ESI-ITFT",
    )
    assert r.formula == "C25H47NO9" and r.spectrum.n_peaks == 7


def test_split_of_first_records(first_records, tmp_path):
    split = split_by_structure(first_records, seed=0)
    counts = _check_partition(split, first_records)
    n = len({r.inchikey_block for r in first_records})
    assert counts["train"]["structures"] == round(0.8 * n) and counts["val"]["structures"] == round(0.1 * n)
    again = split_by_structure(first_records, seed=0)
    np.testing.assert_array_equal(again.test, split.test)
    other = split_by_structure(first_records, seed=1)
    assert set(other.blocks["test"]) != set(split.blocks["test"])
    _check_partition(other, first_records)

    write_split(split, tmp_path / "split.json", source=MASSBANK)
    doc = json.loads((tmp_path / "split.json").read_text())
    assert doc["counts"] == counts and doc["seed"] == 0 and doc["source"] == MASSBANK
    back = read_split(tmp_path / "split.json", first_records)
    for name in PARTS:
        np.testing.assert_array_equal(back.part(name), split.part(name))


def test_split_of_bare_keys_and_bad_fractions(tmp_path):
    keys = ["AAAAAAAAAAAAAA-X-N", "AAAAAAAAAAAAAA-Y-N", "BBBBBBBBBBBBBB-X-N", "CCCCCCCCCCCCCC-X-N"]
    split = split_by_structure(keys, fractions=(0.34, 0.33, 0.33))
    assert sorted(len(split.blocks[p]) for p in PARTS) == [1, 1, 1]
    # the two stereo forms of AAAA... share a block, so they land in one part
    part_of = {i: name for name in PARTS for i in split.part(name)}
    assert part_of[0] == part_of[1]
    for bad in ((0.8, 0.1), (0.8, 0.3, -0.1), (0.5, 0.3, 0.3)):
        with pytest.raises(ValueError):
            split_by_structure(keys, fractions=bad)
    # a split file that does not cover the records is refused
    write_split(split_by_structure(keys[:3]), tmp_path / "split.json")
    with pytest.raises(ValueError, match="in no part"):
        read_split(tmp_path / "split.json", keys)


@pytest.mark.full_data
def test_whole_file_counts(shared_data, tmp_path):
    """All 44,344 spectra are accounted for (records + rejected). The README's 4,260 structures count the
    file's INCHIKEY block, or the raw SMILES string for the 199 spectra without INCHIKEY; by RDKit's key of each
    SMILES there are fewer, as several such SMILES are molecules seen elsewhere or have no InChI (Markush '*')."""
    path = shared_data / MASSBANK
    spectra = list(read_spectra(path))
    assert len(spectra) == 44_344 and all(isinstance(s, Spectrum) for s in spectra)  # the README's count, no errors
    assert len({s.inchikey[:14] if s.inchikey else s.smiles for s in spectra}) == 4_260
    data = load_massbank(path)
    summary = data.summary()
    assert summary["spectra_read"] == 44_344 == summary["spectra"] + summary["rejected"]
    assert all("invalid SMILES" in e.reason for e in data.rejected)
    split = split_by_structure(data)
    counts = _check_partition(split, data)
    assert sum(c["structures"] for c in counts.values()) == summary["structures"]
    print(summary, counts)
