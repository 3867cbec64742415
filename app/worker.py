"""The batch-job worker: a thread in the server process (started by the app's lifespan) that annotates queued jobs
chunk by chunk, committing each chunk's results with their progress.

Why this survives a crash: every accepted spectrum has a ``job_spectra`` row that goes from ``pending`` to ``done``
or ``failed`` once, by a conditional UPDATE (``app.db.jobs.record_spectrum``), committed with the chunk. A server
killed mid-chunk loses only that chunk's uncommitted work; on restart the interrupted (``running``) job is taken up
first and only its pending spectra are annotated. Two processes working on one job store each result once.
"""

from __future__ import annotations

import io
import logging
import threading

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.db.jobs import finish_job, next_job, pending_spectra, record_spectrum, start_job
from app.db.tables import Job
from app.service import ModelNotServed, Service
from models.featurize.mgf import Spectrum, read_spectra

log = logging.getLogger(__name__)


class WorkerSettings(BaseSettings):
    """``MSVAE_WORKER_*``: how the job worker runs."""

    model_config = SettingsConfigDict(env_prefix="MSVAE_WORKER_", extra="ignore")

    enabled: bool = Field(default=True, description="run a job worker in this server process")
    chunk: int = Field(default=16, ge=1, description="spectra annotated and committed together")
    delay_seconds: float = Field(
        default=0.0, ge=0, description="pause after each chunk (tests use it to stop a server mid-job)"
    )


class JobWorker:
    """Processes queued and interrupted jobs until :meth:`stop`; :meth:`wake` ends an idle wait early."""

    def __init__(self, service: Service, settings: WorkerSettings | None = None) -> None:
        self.service = service
        self.settings = settings or WorkerSettings()
        self.poll_seconds = service.settings.worker_poll_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="msvae-job-worker", daemon=True)

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
                    self.service.refresh_candidates()  # molecules imported by other processes
            except Exception:  # a database outage must not end the thread; the job stays resumable
                log.exception("job worker error; retrying in %.1f s", self.poll_seconds)
            if not worked:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def run_once(self) -> bool:
        """Work on the next job until it is finished or the worker is stopped; False when there was none."""
        database = self.service.database
        with database.session() as session:
            job = next_job(session)
            if job is None:
                return False
            start_job(session, job)
            job_id, mgf, top_k, ppm, model_name = job.id, job.input_mgf, job.top_k, job.ppm, job.model
            pending = [row.spectrum_index for row in pending_spectra(session, job_id)]
        try:
            model = self.service.model_for(model_name)
        except ModelNotServed as exc:
            self._finish(job_id, str(exc))
            return True
        log.info("job %s: %d spectra to annotate", job_id, len(pending))
        spectra = _spectra_at(mgf, set(pending))
        chunk = self.settings.chunk
        for start in range(0, len(pending), chunk):
            if self._stop.is_set():
                return True
            indices = pending[start : start + chunk]
            missing = [i for i in indices if i not in spectra]
            found = [spectra[i] for i in indices if i in spectra]
            results, rejected = self.service.annotate(found, top_k=top_k, ppm=ppm, model=model) if found else ([], [])
            with database.session() as session:
                for item in results:
                    record_spectrum(session, job_id, item["index"], result=item)
                for item in rejected:
                    record_spectrum(session, job_id, item["index"], error=item["reason"])
                for index in missing:  # only if the stored MGF changed under the job
                    record_spectrum(session, job_id, index, error="spectrum no longer readable in the stored MGF")
            if self.settings.delay_seconds:
                self._stop.wait(self.settings.delay_seconds)
        self._finish(job_id, None)
        return True

    def _finish(self, job_id: str, error: str | None) -> None:
        with self.service.database.session() as session:
            job = session.get(Job, job_id)
            if job is not None and job.status == "running":
                finish_job(session, job, error)
                log.info("job %s %s", job_id, job.status)


def _spectra_at(mgf: bytes, indices: set[int]) -> dict[int, Spectrum]:
    """The readable spectra of a stored MGF whose index is in ``indices``."""
    items = read_spectra(io.BytesIO(mgf))
    return {item.index: item for item in items if isinstance(item, Spectrum) and item.index in indices}
