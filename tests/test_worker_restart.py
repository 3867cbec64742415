"""Batch jobs survive a crash: a server killed with SIGKILL mid-job resumes the job on restart, and every accepted
spectrum ends with exactly one result (on SQLite, and on PostgreSQL when ``MSVAE_TEST_POSTGRES_URL`` is set)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from api_helpers import massbank_sample, server_env, serving_model
from databases import database_params, scratch_database
from live_server import LiveServer
from sqlalchemy import func, select

from app.db import Database, Job, JobSpectrum

N_SPECTRA = 12


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(what)


@pytest.mark.parametrize("backend", database_params())
def test_a_killed_server_resumes_its_job_without_loss_or_repeats(
    backend: str, tmp_path: Path, shared_data: Path
) -> None:
    sample = massbank_sample(shared_data, N_SPECTRA, distinct=False)
    broken = b"BEGIN IONS\nTITLE=broken\nPEPMASS=200\n100 x\nEND IONS\n"
    with scratch_database(backend, tmp_path) as url:
        # one spectrum per chunk, a pause after each: the job takes seconds, so the kill lands mid-job
        # (a short claim lease: the killed server's claim on its last spectrum expires soon after the restart)
        env = server_env(
            url,
            serving_model(tmp_path),
            tmp_path,
            WORKER_CHUNK="1",
            WORKER_DELAY_SECONDS="0.25",
            WORKER_CLAIM_SECONDS="2",
        )
        first = LiveServer(env, tmp_path / "first.log").start()
        try:
            client = httpx.Client(base_url=first.url, timeout=30)
            client.post("/v1/candidates", files={"file": ("sample.mgf", sample)}).raise_for_status()
            created = client.post("/v1/jobs", files={"file": ("batch.mgf", broken + sample)}).json()
            assert created["n_spectra"] == N_SPECTRA and [r["index"] for r in created["rejected"]] == [0]
            job_id = created["id"]
            _wait(lambda: client.get(f"/v1/jobs/{job_id}").json()["n_done"] >= 2, 60, "no progress before the kill")
        finally:
            first.kill()
            client.close()

        database = Database(url)
        try:
            with database.session() as session:
                job = session.get(Job, job_id)
                assert job.status == "running" and 2 <= job.n_done < N_SPECTRA, (job.status, job.n_done)
                done_before = job.n_done

            with LiveServer(env, tmp_path / "second.log") as second, httpx.Client(base_url=second.url) as client:
                status = _wait(
                    lambda: (s := client.get(f"/v1/jobs/{job_id}").json())["status"] in ("done", "failed") and s,
                    120,
                    "the job did not finish after the restart",
                )
                results = client.get(f"/v1/jobs/{job_id}/results").json()

            assert status["status"] == "done" and status["n_failed"] == 0
            assert status["n_done"] == N_SPECTRA and done_before < N_SPECTRA
            indices = [r["index"] for r in results["results"]]
            assert indices == list(range(1, N_SPECTRA + 1))  # each accepted spectrum once, none lost
            assert [r["index"] for r in results["rejected"]] == [0]
            with database.session() as session:
                rows = session.execute(
                    select(JobSpectrum.status, func.count())
                    .where(JobSpectrum.job_id == job_id)
                    .group_by(JobSpectrum.status)
                ).all()
                assert dict(rows) == {"done": N_SPECTRA}
                # the counter moves only when a pending row is claimed, so a repeated annotation would show here
                assert session.get(Job, job_id).n_done == N_SPECTRA
        finally:
            database.dispose()
