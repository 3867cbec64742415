"""The FastAPI application, built from settings by :func:`create_app` (``uvicorn --factory app.main:create_app``,
which ``msvae serve`` runs after migrating the database)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app.api import api_router, api_routes
from app.api.errors import install_error_handlers
from app.api.limits import RequestLimitMiddleware
from app.api.openapi import install_openapi
from app.service import Service
from app.settings import Settings, get_settings
from app.worker import JobWorker, WorkerSettings

WEB_DIR = Path(__file__).resolve().parent / "web"


def create_app(settings: Settings | None = None, worker_settings: WorkerSettings | None = None) -> FastAPI:
    """The service application. The model and candidates load, and the job worker starts, when the app starts
    (its lifespan), once per process; the database must already be migrated (``msvae serve`` does it)."""
    settings = settings or get_settings()
    worker_settings = worker_settings or WorkerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service.start(settings)
        app.state.service = service
        worker = JobWorker(service, worker_settings) if worker_settings.enabled else None
        app.state.worker = worker
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            service.close()

    app = FastAPI(
        title="msvae annotation service",
        version="0.1.0",
        description="Annotates MS/MS spectra with candidate structures ranked by a multimodal VAE's predicted "
        "fingerprint. Write endpoints need the API key when the service has one.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(
        RequestLimitMiddleware, max_bytes=settings.max_upload_bytes, timeout_seconds=settings.request_timeout_seconds
    )
    install_error_handlers(app, api_routes)
    app.include_router(api_router)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    install_openapi(app)
    return app


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus the service's own INFO messages (model loaded, job progress) on its handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["app"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def prepare_database(settings: Settings) -> None:
    """Migrate ``settings.database_url`` to the newest revision and, when its candidate table is empty, load the
    default candidate set (:mod:`app.candidates.default`), saying so."""
    from app.candidates.default import load_default_candidates
    from app.db.migrate import upgrade_database

    upgrade_database(settings.database_url)
    report = load_default_candidates(settings)
    if report is not None:
        print(f"empty candidate database: loaded the default set ({report.added} MassBank structures)", flush=True)


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """``msvae serve``: prepare the database (:func:`prepare_database`), then run uvicorn (each of ``workers``
    processes loads the model once and runs a job worker)."""
    import uvicorn

    from app.http_nodelay import NO_DELAY_HTTP

    prepare_database(get_settings())
    uvicorn.run(
        "app.main:create_app", factory=True, host=host, port=port, workers=workers, log_config=_log_config(),
        http=NO_DELAY_HTTP,
    )  # fmt: skip
