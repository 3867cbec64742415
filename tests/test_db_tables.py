"""The ORM tables on a migrated database: constraints, timestamps, and restart-safe job progress."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from databases import database_url_fixture, migrated_database
from sqlalchemy.exc import IntegrityError

from app.db import Candidate, Database, Job, JobSpectrum
from app.db.jobs import claim_spectra, count_pending, create_job, finish_job, open_jobs, record_spectrum, start_job

db_url = database_url_fixture()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    with migrated_database(db_url) as database:
        yield database


def _candidate(inchikey: str, mass: float = 180.06339) -> Candidate:
    return Candidate(
        inchikey=inchikey,
        inchikey_block=inchikey[:14],
        smiles="OCC1OC(O)C(O)C(O)C1O",
        formula="C6H12O6",
        monoisotopic_mass=mass,
        fingerprint_spec="test",
        fingerprint=bytes([0b10100000, 0xFF]),
    )


def test_candidate_round_trip_and_unique_inchikey(db: Database) -> None:
    key = "WQZGKKKJIJFFOK-GASJEMHNSA-N"
    with db.session() as session:
        session.add(_candidate(key))
    with db.session() as session:
        row = session.scalars(sa.select(Candidate)).one()
        assert (row.inchikey_block, row.fingerprint, row.monoisotopic_mass) == (key[:14], b"\xa0\xff", 180.06339)
        # Timestamps come back timezone-aware and recent on both backends.
        assert row.created_at.tzinfo is not None
        assert abs(datetime.now(UTC) - row.created_at) < timedelta(minutes=5)
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(_candidate(key, mass=1.0))


def test_job_status_is_checked_and_spectra_are_unique_per_job(db: Database) -> None:
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(Job(model="m", top_k=10, ppm=10.0, input_mgf=b"", status="bogus"))
    with db.session() as session:
        job = create_job(session, mgf=b"x", model="m", top_k=5, ppm=10.0, spectra=[(0, "a")])
        job_id = job.id
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(JobSpectrum(job_id=job_id, spectrum_index=0, title="again"))


def test_deleting_a_job_deletes_its_spectra(db: Database) -> None:
    """The foreign key cascades (SQLite needs foreign_keys=ON for this, which the engine sets)."""
    with db.session() as session:
        job_id = create_job(session, mgf=b"x", model="m", top_k=5, ppm=10.0, spectra=[(0, "a"), (1, "b")]).id
    with db.session() as session:
        session.execute(sa.delete(Job).where(Job.id == job_id))
    with db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(JobSpectrum)) == 0


def test_job_resumes_exactly_the_pending_spectra_and_never_records_one_twice(db: Database) -> None:
    spectra = [(0, "s0"), (2, "s2"), (3, "s3")]  # index 1 was rejected at submission
    rejected = [{"index": 1, "title": "s1", "reason": "no peaks"}]
    with db.session() as session:
        job = create_job(session, mgf=b"BEGIN IONS", model="m", top_k=3, ppm=5.0, spectra=spectra, rejected=rejected)
        job_id = job.id
        assert (job.status, job.n_spectra, job.n_done) == ("queued", 3, 0)

    # Worker a claims two spectra, records spectrum 0, then dies before finishing.
    with db.session() as session:
        assert open_jobs(session) == [job_id]
        job = session.get(Job, job_id)
        start_job(session, job)
        first_start = job.started_at
    with db.session() as session:
        assert claim_spectra(session, job_id, "a", 2, lease_seconds=60) == [0, 2]
    with db.session() as session:
        assert claim_spectra(session, job_id, "b", 5, lease_seconds=60) == [3]  # a's claims are taken
        assert claim_spectra(session, job_id, "b", 5, lease_seconds=60) == []
        assert not record_spectrum(session, job_id, 0, result={"candidates": ["b"]}, worker="b")  # not b's claim
        assert record_spectrum(session, job_id, 0, result={"candidates": []}, worker="a")
        assert count_pending(session, job_id) == 2

    # A restarted worker: the interrupted job comes first; a's expired claim on spectrum 2 is free again.
    with db.session() as session:
        create_job(session, mgf=b"later", model="m", top_k=3, ppm=5.0, spectra=[(0, None)])
    with db.session() as session:
        assert open_jobs(session)[0] == job_id
        job = session.get(Job, job_id)
        assert job.status == "running"
        start_job(session, job)
        assert job.started_at == first_start
    with db.session() as session:
        assert claim_spectra(session, job_id, "c", 5, lease_seconds=0) == [2, 3]
        # Recording spectrum 0 again (e.g. a second worker) changes nothing.
        assert not record_spectrum(session, job_id, 0, result={"candidates": ["twice"]})
        assert not record_spectrum(session, job_id, 2, result={"candidates": ["late"]}, worker="a")  # a lost it
        assert record_spectrum(session, job_id, 2, result={"candidates": ["b"]}, worker="c")
        assert record_spectrum(session, job_id, 3, error="model failed", worker="c")
        assert count_pending(session, job_id) == 0
        assert finish_job(session, job_id)
        assert not finish_job(session, job_id)  # closed once

    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.n_done, job.n_failed, job.rejected) == ("done", 3, 1, rejected)
        assert job.finished_at is not None and job.finished_at >= job.started_at
        rows = {s.spectrum_index: (s.status, s.result, s.error) for s in job.spectra}
        assert rows == {
            0: ("done", {"candidates": []}, None),
            2: ("done", {"candidates": ["b"]}, None),
            3: ("failed", None, "model failed"),
        }
