"""The CASMI 2016 hold-out (training/spectra/casmi2016.py): challenge structures leave training and validation."""

from __future__ import annotations

import pytest

from models.featurize.mgf import read_spectra
from training.spectra.casmi2016 import CASMI2016_PREFIX, casmi_holdout_split
from training.spectra.dataset import split_by_structure

BLOCKS = [f"{chr(65 + i)}" * 14 for i in range(20)]


def test_holdout_moves_structures_into_test():
    keys = [b for b in BLOCKS for _ in range(3)]  # three records per structure
    base = split_by_structure(keys, (0.6, 0.2, 0.2), seed=0)
    held = [base.blocks["train"][0], base.blocks["val"][0], base.blocks["test"][0]]
    split = casmi_holdout_split(base, held, keys)
    assert not set(held) & set(split.blocks["train"]) and not set(held) & set(split.blocks["val"])
    assert set(split.blocks["test"]) == set(base.blocks["test"]) | set(held)
    assert len(split.train) == len(base.train) - 3 and len(split.val) == len(base.val) - 3
    assert len(split.test) == len(base.test) + 6
    assert set(split.blocks["train"]) < set(base.blocks["train"])  # nothing new enters training


@pytest.mark.full_data  # the CASMI 2016 records are not in the repository's MassBank sample
def test_holdout_on_the_real_massbank_casmi_records(shared_data):
    # the file's INCHIKEY headers stand in for the RDKit keys here (reading them costs seconds, RDKit minutes)
    spectra = [s for s in read_spectra(shared_data / "massbank" / "massbank-pos-ms2.mgf.gz") if s.inchikey]
    keys = [s.inchikey[:14] for s in spectra]
    casmi = {k for k, s in zip(keys, spectra, strict=True) if s.title.startswith(CASMI2016_PREFIX)}
    assert len(casmi) > 300
    base = split_by_structure(keys)
    split = casmi_holdout_split(base, sorted(casmi), keys)
    assert len(casmi & set(base.blocks["train"])) > 200  # the default split trains on most challenge structures
    assert not ({keys[i] for i in split.train} | {keys[i] for i in split.val}) & casmi
    assert casmi <= {keys[i] for i in split.test}
