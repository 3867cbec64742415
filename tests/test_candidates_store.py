"""The in-memory candidate matrix and the indexed mass-window queries, against brute-force filters."""

from __future__ import annotations

import gc
import itertools
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import sqlalchemy as sa
from databases import database_url_fixture, migrated_database

from app.candidates import store as store_module
from app.candidates.importer import import_candidates
from app.candidates.store import CandidateStore, candidates_in_mass_window, candidates_with_formula
from app.db import Candidate, Database
from app.worker import JobWorker, WorkerSettings
from models.featurize.fingerprints import fingerprint_bits, parse_fingerprint_spec
from models.featurize.mgf import Spectrum, read_spectra

db_url = database_url_fixture()


@pytest.fixture(scope="module")
def massbank_smiles(shared_data: Path) -> list[str]:
    """Distinct SMILES of the first 1,500 MassBank spectra (a few hundred real molecules)."""
    spectra = itertools.islice(read_spectra(shared_data / "massbank" / "massbank-pos-ms2.mgf.gz"), 1500)
    return list(dict.fromkeys(s.smiles for s in spectra if isinstance(s, Spectrum) and s.smiles))


@pytest.fixture
def db(db_url: str, massbank_smiles: list[str]) -> Iterator[Database]:
    """A database holding the first half of the MassBank molecules."""
    with migrated_database(db_url) as database:
        with database.session() as session:
            import_candidates(session, "\n".join(massbank_smiles[: len(massbank_smiles) // 2]))
        yield database


def _table(db: Database) -> dict[int, tuple[float, str, str, bytes]]:
    columns = (Candidate.id, Candidate.monoisotopic_mass, Candidate.formula, Candidate.smiles, Candidate.fingerprint)
    with db.session() as session:
        rows = session.execute(sa.select(*columns))
        return {row.id: (row.monoisotopic_mass, row.formula, row.smiles, row.fingerprint) for row in rows}


def _brute_force(table: dict[int, tuple[float, str, str, bytes]], mass: float, ppm: float) -> set[int]:
    ids = np.array(list(table), dtype=np.int64)
    masses = np.array([v[0] for v in table.values()])
    delta = mass * ppm / 1e6
    return set(ids[(masses >= mass - delta) & (masses <= mass + delta)].tolist())


def _query_masses(table: dict[int, tuple[float, str, str, bytes]]) -> list[float]:
    """Masses of stored molecules, shifted by a few ppm either way, plus masses between molecules."""
    masses = sorted(v[0] for v in table.values())
    rng = np.random.default_rng(0)
    picked = rng.choice(masses, size=30, replace=False)
    return [m * (1 + s * 1e-6) for m, s in zip(picked, rng.uniform(-20, 20, size=30), strict=True)] + [
        (a + b) / 2 for a, b in zip(masses[:10], masses[1:11], strict=True)
    ]


def test_mass_window_matches_brute_force(db: Database) -> None:
    table = _table(db)
    with db.session() as session:
        store = CandidateStore.load(session, "morgan2-2048+maccs")
    assert len(store) == len(table) > 100
    matrix = store.matrix
    assert np.all(np.diff(matrix.masses) >= 0)
    n_nonempty = 0
    for mass, ppm in itertools.product(_query_masses(table), (2.0, 10.0, 100.0)):
        expected = _brute_force(table, mass, ppm)
        indices = store.by_mass(mass, ppm)
        assert set(matrix.ids[indices].tolist()) == expected
        with db.session() as session:
            assert {c.id for c in candidates_in_mass_window(session, mass, ppm)} == expected
        n_nonempty += bool(expected)
    assert n_nonempty > 30  # the windows were not all empty

    # Every per-index accessor agrees with the table row of that id.
    for i in range(0, len(matrix), 7):
        mass, formula, smiles, fingerprint = table[int(matrix.ids[i])]
        assert (matrix.masses[i], matrix.formulas[i], matrix.smiles[i]) == (mass, formula, smiles)
        assert matrix.packed[i].tobytes() == fingerprint
    some = np.arange(0, len(matrix), 11)
    assert np.array_equal(matrix.bits_at(some).to_dense(), fingerprint_bits(list(matrix.smiles[some]), store.spec))
    assert np.array_equal(matrix.bits[some].to_dense(), matrix.bits_at(some).to_dense())  # the whole-store view


def test_formula_lookup_matches_brute_force(db: Database) -> None:
    table = _table(db)
    with db.session() as session:
        store = CandidateStore.load(session, "morgan2-2048+maccs")
    formulas = sorted({v[1] for v in table.values()})
    for formula in formulas[:: max(1, len(formulas) // 25)] + ["C999"]:
        expected = {i for i, v in table.items() if v[1] == formula}
        assert set(store.matrix.ids[store.by_formula(formula)].tolist()) == expected
        with db.session() as session:
            assert {c.id for c in candidates_with_formula(session, formula)} == expected


def test_refresh_picks_up_new_imports_and_deletions(db: Database, massbank_smiles: list[str]) -> None:
    with db.session() as session:
        store = CandidateStore.load(session, "morgan2-2048+maccs")
    before = store.matrix
    with db.session() as session:
        report = import_candidates(session, "\n".join(massbank_smiles))
    assert report.added > 0
    with db.session() as session:
        assert store.refresh(session) == report.added
        assert store.refresh(session) == 0
    table = _table(db)
    assert sorted(store.matrix.ids.tolist()) == sorted(table)
    assert np.all(np.diff(store.matrix.masses) >= 0)
    assert len(before) == len(table) - report.added  # the old snapshot is left as it was
    with db.session() as session:  # the merged snapshot's packed strings: every row's own SMILES and InChIKey
        rows = session.execute(sa.select(Candidate.id, Candidate.smiles, Candidate.inchikey))
        identity = {row.id: (row.smiles, row.inchikey) for row in rows}
    matrix = store.matrix
    assert [(matrix.smiles[i], matrix.inchikeys[i]) for i in range(len(matrix))] == [
        identity[int(i)] for i in matrix.ids
    ]
    for mass in _query_masses(table)[:10]:
        assert set(store.matrix.ids[store.by_mass(mass, 10.0)].tolist()) == _brute_force(table, mass, 10.0)

    with db.session() as session:
        session.execute(sa.delete(Candidate).where(Candidate.id.in_(list(table)[:5])))
    with db.session() as session:
        assert store.refresh(session) == -5
    assert sorted(store.matrix.ids.tolist()) == sorted(table)[5:]


def test_store_of_another_spec_recomputes_the_fingerprints(db: Database) -> None:
    spec = parse_fingerprint_spec("morgan2-1024")
    with db.session() as session:
        store = CandidateStore.load(session, spec)
    matrix = store.matrix
    assert len(matrix) == len(_table(db)) and matrix.bits.n_bits == 1024
    assert np.array_equal(matrix.bits.to_dense(), fingerprint_bits(list(matrix.smiles), spec))


def test_loading_pauses_the_garbage_collector_and_gives_its_state_back(db: Database) -> None:
    """The collector is paused while rows are read (its passes over millions of row tuples were a third of the
    load time) and left as it was found: on after a load, still off when the caller had turned it off."""
    seen: list[bool] = []
    real_fetch = store_module._fetch

    def fetch(*args, **kwargs):
        seen.append(gc.isenabled())
        yield from real_fetch(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "_fetch", fetch)
        assert gc.isenabled()
        with db.session() as session:
            store = CandidateStore.load(session, "morgan2-2048+maccs")
        assert len(store) and seen and not any(seen) and gc.isenabled()
        gc.disable()
        try:
            with db.session() as session:
                CandidateStore.load(session, "morgan2-2048+maccs")
            assert not gc.isenabled()
        finally:
            gc.enable()


def test_a_poll_without_recount_reads_new_rows_and_counts_only_then(db: Database, massbank_smiles: list[str]) -> None:
    """``refresh(recount=False)`` (the idle job worker's poll) skips counting the table while nothing new came:
    a deletion is seen by the next refresh that counts, or as soon as new rows are read."""
    with db.session() as session:
        store = CandidateStore.load(session, "morgan2-2048+maccs")
    ids = sorted(_table(db))
    with db.session() as session:
        session.execute(sa.delete(Candidate).where(Candidate.id.in_(ids[:3])))
    with db.session() as session:
        assert store.refresh(session, recount=False) == 0
        assert store.refresh(session) == -3
        session.execute(sa.delete(Candidate).where(Candidate.id.in_(ids[3:5])))
    with db.session() as session:
        report = import_candidates(session, "\n".join(massbank_smiles))
    with db.session() as session:
        assert store.refresh(session, recount=False) == report.added - 2
    assert sorted(store.matrix.ids.tolist()) == sorted(_table(db))


def test_idle_worker_counts_the_candidate_table_every_recount_seconds() -> None:
    def polls(recount_seconds: float) -> list[bool]:
        calls: list[bool] = []
        service = SimpleNamespace(
            settings=SimpleNamespace(worker_poll_seconds=1.0), refresh_candidates=lambda recount: calls.append(recount)
        )
        worker = JobWorker(service, WorkerSettings(recount_seconds=recount_seconds))  # type: ignore[arg-type]
        for _ in range(3):
            worker._refresh_candidates()
        return calls

    assert polls(3600) == [True, False, False]
    assert polls(0) == [True, True, True]


# What release_freed_memory is for, in a fresh process: blocks freed in the middle of the C heap stay resident until
# it runs. (glibc's threshold for giving a block its own mapping rises to the size of a freed one, so after the first
# 1 MiB array is freed the next ones share the heap, interleaved with small arrays that stay.)
_FRAGMENTED_HEAP = """
from pathlib import Path
import numpy as np
from app.candidates.store import release_freed_memory

def rss_mb():
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) // 1024

np.ones(1 << 20, np.uint8)
big, small = [], []
for _ in range(200):
    big.append(np.ones(1 << 20, np.uint8))
    small.append(np.ones(1 << 12, np.uint8))
before = rss_mb()
del big
freed = rss_mb()
release_freed_memory()
print(before, freed, rss_mb())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_release_freed_memory_returns_the_heaps_free_pages() -> None:
    out = subprocess.run([sys.executable, "-c", _FRAGMENTED_HEAP], capture_output=True, text=True, check=True)
    before, freed, after = map(int, out.stdout.split())
    assert before - freed < 50  # 200 MiB freed, but still resident
    assert freed - after > 150  # given back
