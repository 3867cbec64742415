"""The candidate fingerprint cache: hits give exactly what featurizing gives, another spelling of a cached molecule
skips the fingerprints, the size stays bounded (least recently used go first), invalid SMILES are not cached."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from app.annotation import candidates_from_smiles
from app.candidates.cache import FingerprintCache
from models.featurize.fingerprints import InvalidMoleculeError, fingerprint_bits
from models.featurize.mgf import Spectrum, read_spectra

SPEC = "morgan2-2048+maccs"


@pytest.fixture(scope="module")
def massbank_smiles(shared_data: Path) -> list[str]:
    spectra = itertools.islice(read_spectra(shared_data / "massbank" / "massbank-pos-ms2.mgf.gz"), 1500)
    return list(dict.fromkeys(s.smiles for s in spectra if isinstance(s, Spectrum) and s.smiles))[:150]


def _columns(candidates):
    return (list(candidates.smiles), list(candidates.inchikeys), list(candidates.formulas), candidates.bits.to_dense())


def test_cache_hits_equal_featurizing(massbank_smiles: list[str]) -> None:
    cache = FingerprintCache(SPEC)
    plain, _ = candidates_from_smiles(massbank_smiles, SPEC)
    first, _ = candidates_from_smiles(massbank_smiles, SPEC, cache=cache)
    misses = cache.misses
    second, _ = candidates_from_smiles(massbank_smiles, SPEC, cache=cache)
    assert cache.misses == misses and cache.hits >= len(massbank_smiles)  # all hits the second time
    for got in (first, second):
        for a, b in zip(_columns(got), _columns(plain), strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(second.bits.to_dense(), fingerprint_bits(massbank_smiles, SPEC))


def test_another_spelling_reuses_the_canonical_entry() -> None:
    cache = FingerprintCache(SPEC)
    ethanol = cache.molecule("CCO")
    again = cache.molecule("OCC")
    assert again is ethanol  # found by canonical SMILES: no InChIKey or fingerprint computed
    assert cache.molecule("OCC") is ethanol and cache.hits >= 2


def test_size_is_bounded_least_recently_used_first() -> None:
    cache = FingerprintCache(SPEC, max_size=4)
    for smiles in ("C", "CC", "CCC"):
        cache.molecule(smiles)  # canonical already: one key each
    cache.molecule("C")  # now the most recently used
    cache.molecule("CCCC")
    cache.molecule("CCCCC")
    assert len(cache) == 4
    assert set(cache._entries) == {"C", "CCC", "CCCC", "CCCCC"}


def test_invalid_smiles_raise_and_are_not_cached() -> None:
    cache = FingerprintCache(SPEC)
    with pytest.raises(InvalidMoleculeError, match="C1CC"):
        cache.molecule("C1CC")
    assert len(cache) == 0
    candidates, rejected = candidates_from_smiles(["CCO", "C1CC", "c1ccccc1"], SPEC, cache=cache)
    assert list(candidates.smiles) == ["CCO", "c1ccccc1"] and [i for i, _ in rejected] == [1]


def test_cache_of_another_spec_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot featurize"):
        candidates_from_smiles(["CCO"], "morgan2-1024", cache=FingerprintCache(SPEC))


def test_service_serves_a_repeated_candidate_list_from_its_cache(tmp_path: Path, shared_data: Path) -> None:
    """The same request twice through the service: identical results, and the second featurizes nothing."""
    from app.db import Database
    from app.db.migrate import upgrade_database
    from app.service import Service
    from app.settings import Settings
    from models.spectra_model import SpectraModel

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_database(url)
    model = SpectraModel.create("mlp", spectrum_hidden=(32,), name="tiny")
    service = Service(Settings(database_url=url, data_dir=tmp_path), Database(url), model)
    spectra = [s for s in itertools.islice(read_spectra(shared_data / "massbank" / "massbank-pos-ms2.mgf.gz"), 40)]
    spectra = [s for s in spectra if isinstance(s, Spectrum) and s.smiles][:3]
    pool = list(dict.fromkeys(s.smiles for s in spectra)) + ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O"]
    given = {s.index: pool for s in spectra}
    try:
        first = service.annotate(spectra, top_k=5, ppm=10.0, given=given)
        misses = service.fingerprints.misses
        second = service.annotate(spectra, top_k=5, ppm=10.0, given=given)
    finally:
        service.close()
    assert first == second and first[0] and not first[1]
    assert service.fingerprints.misses == misses  # nothing featurized the second time
