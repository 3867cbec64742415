"""JSON errors for every failure: ``{"detail": ...}`` (plus ``"rejected"`` when spectra were refused), never a
bare 500 page."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import Match

log = logging.getLogger(__name__)


class RequestRejected(Exception):
    """The request as a whole cannot be served (e.g. no spectrum in it is usable): status, message, and the
    per-spectrum rejections that explain it."""

    def __init__(self, status_code: int, detail: str, rejected: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.rejected = list(rejected or [])


async def _rejected_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestRejected)
    body: dict[str, Any] = {"detail": exc.detail}
    if exc.rejected:
        body["rejected"] = exc.rejected
    return JSONResponse(body, status_code=exc.status_code)


async def _method_not_allowed_handler(request: Request, exc: Exception) -> JSONResponse:
    # Starlette's Allow header lists the methods of the first route on the path only (GET and POST /v1/candidates
    # are two routes); list those of every route on it.
    methods = {
        method
        for route in request.app.routes
        if isinstance(route, APIRoute) and route.matches(request.scope)[0] != Match.NONE
        for method in route.methods
    }
    detail = getattr(exc, "detail", "Method Not Allowed")
    return JSONResponse({"detail": detail}, status_code=405, headers={"Allow": ", ".join(sorted(methods))})


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON handlers (HTTPException and validation errors already answer ``{"detail"}``)."""
    app.add_exception_handler(RequestRejected, _rejected_handler)
    app.add_exception_handler(405, _method_not_allowed_handler)
    app.add_exception_handler(Exception, _unexpected_handler)


def spectrum_label(item: dict[str, Any]) -> str:
    """``spectrum 3 (TITLE='x'), line 12: reason`` for one rejection dict."""
    where = []
    if item.get("index") is not None:
        where.append(f"spectrum {item['index']}")
    if item.get("title"):
        where.append(f"TITLE={item['title']!r}")
    if item.get("line") is not None:
        where.append(f"line {item['line']}")
    return f"{', '.join(where)}: {item['reason']}" if where else str(item["reason"])
