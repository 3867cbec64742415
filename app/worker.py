"""The batch-job worker: a thread in the server process (started by the app's lifespan) that annotates queued jobs
chunk by chunk, committing each chunk's results with their progress.

Several servers may share one database: before annotating a chunk a worker claims its spectra
(``app.db.jobs.claim_spectra``), so no spectrum is annotated by two workers, and records each result only while it
holds the claim. Why this survives a crash: every accepted spectrum has a ``job_spectra`` row that goes from
``pending`` to ``done`` or ``failed`` once, by a conditional UPDATE committed with the chunk. A server killed
mid-chunk loses only that chunk's uncommitted work; its claims expire after ``claim_seconds`` and the spectra are
claimed again, by a restarted server or another one. The stored input is read forward once per job (not held
whole in memory), in the order the spectra are claimed.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.db.jobs import claim_spectra, count_pending, finish_job, open_jobs, record_spectrum, start_job
from app.db.tables import Job
from app.service import ModelNotServed, Service
from models.featurize.mgf import ReadLimits, Spectrum, SpectrumError, read_spectra

log = logging.getLogger(__name__)


class WorkerSettings(BaseSettings):
    """``MSVAE_WORKER_*``: how the job worker runs."""

    model_config = SettingsConfigDict(env_prefix="MSVAE_WORKER_", extra="ignore")

    enabled: bool = Field(default=True, description="run a job worker in this server process")
    chunk: int = Field(default=16, ge=1, description="spectra claimed, annotated and committed together")
    delay_seconds: float = Field(
        default=0.0, ge=0, description="pause after each chunk (tests use it to stop a server mid-job)"
    )
    claim_seconds: float = Field(
        default=60.0, gt=0, description="lease of a claim: spectra claimed longer ago by a worker are free again"
    )
    recount_seconds: float = Field(
        default=60.0,
        ge=0,
        description="an idle worker picks up new candidates at every poll, and counts the candidate table (to see "
        "deleted rows) at most this often",
    )


class StoredSpectra:
    """The spectra of a job's stored input by index, read forward; asking for an index behind the reading position
    (a claim taken over from a dead worker) starts the reading again."""

    def __init__(self, data: bytes, limits: ReadLimits) -> None:
        self.data = data
        self.limits = limits
        self._items: Iterator[Spectrum | SpectrumError] = iter(())
        self._position = 0  # index of the next spectrum the reading gives
        self._restart()

    def _restart(self) -> None:
        self._items = read_spectra(io.BytesIO(self.data), limits=self.limits)
        self._position = 0

    def take(self, indices: list[int]) -> dict[int, Spectrum]:
        """The readable spectra among ``indices`` (ascending), by index."""
        if not indices:
            return {}
        if indices[0] < self._position:
            self._restart()
        wanted, found = set(indices), {}
        for item in self._items:
            if item.index is None:  # text outside any spectrum
                continue
            self._position = item.index + 1
            if item.index in wanted and isinstance(item, Spectrum):
                found[item.index] = item
            if item.index >= indices[-1]:
                break
        return found


class JobWorker:
    """Processes queued and interrupted jobs until :meth:`stop`; :meth:`wake` ends an idle wait early."""

    def __init__(self, service: Service, settings: WorkerSettings | None = None) -> None:
        self.service = service
        self.settings = settings or WorkerSettings()
        self.poll_seconds = service.settings.worker_poll_seconds
        # Names this worker in claims: unique per process, readable in the database.
        self.id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="msvae-job-worker", daemon=True)
        self._next_recount = 0.0  # time.monotonic() of the next candidate refresh that counts the table

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the worker to stop after its current chunk, and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            worked = False
            try:
                worked = self.run_once()
                if not worked:
                    self._refresh_candidates()
            except Exception:  # a database outage must not end the thread; the job stays resumable
                log.exception("job worker error; retrying in %.1f s", self.poll_seconds)
            if not worked:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def _refresh_candidates(self) -> None:
        """Molecules imported by other processes; the table is counted (a scan: 0.1 s a poll at 1.9M rows on
        PostgreSQL) only every ``recount_seconds``."""
        now = time.monotonic()
        recount = now >= self._next_recount
        if recount:
            self._next_recount = now + self.settings.recount_seconds
        self.service.refresh_candidates(recount=recount)

    def run_once(self) -> bool:
        """Work on the open jobs (each until nothing of it is left to claim, or the worker is stopped); False when
        there was nothing to claim."""
        with self.service.database.session() as session:
            job_ids = open_jobs(session)
        worked = False
        for job_id in job_ids:
            if self._stop.is_set():
                break
            worked = self._work_on(job_id) or worked
        return worked

    def _claim(self, job_id: str) -> list[int]:
        with self.service.database.session() as session:
            return claim_spectra(session, job_id, self.id, self.settings.chunk, self.settings.claim_seconds)

    def _work_on(self, job_id: str) -> bool:
        """Claim and annotate chunks of ``job_id`` while there are any; close the job when none is pending."""
        database = self.service.database
        indices = self._claim(job_id)
        worked = bool(indices)
        if indices:
            with database.session() as session:
                job = session.get(Job, job_id)
                assert job is not None
                start_job(session, job)
                data, top_k, ppm, model_name = job.input_mgf, job.top_k, job.ppm, job.model
            try:
                model = self.service.model_for(model_name)
            except ModelNotServed as exc:
                with database.session() as session:
                    finish_job(session, job_id, str(exc))
                return True
            stored = StoredSpectra(data, self.service.settings.read_limits(job=True))
        while indices and not self._stop.is_set():
            spectra = stored.take(indices)
            found = [spectra[i] for i in indices if i in spectra]

            def annotate(found: list[Spectrum] = found) -> tuple[list, list]:
                return self.service.annotate(found, top_k=top_k, ppm=ppm, model=model) if found else ([], [])

            results, rejected = self.service.scheduler.run_background(annotate)
            with database.session() as session:
                for item in results:
                    record_spectrum(session, job_id, item["index"], result=item, worker=self.id)
                for item in rejected:
                    record_spectrum(session, job_id, item["index"], error=item["reason"], worker=self.id)
                for index in indices:
                    if index not in spectra:  # only if the stored input changed under the job
                        error = "spectrum no longer readable in the stored input"
                        record_spectrum(session, job_id, index, error=error, worker=self.id)
            log.info("job %s: annotated spectra %s", job_id, ",".join(map(str, indices)))
            if self.settings.delay_seconds:
                self._stop.wait(self.settings.delay_seconds)
            indices = [] if self._stop.is_set() else self._claim(job_id)
        with database.session() as session:
            if not self._stop.is_set() and count_pending(session, job_id) == 0 and finish_job(session, job_id):
                log.info("job %s finished", job_id)
        return worked
