"""JSON errors for every failure: ``{"detail": ...}`` (plus ``"rejected"`` when spectra were refused), never a
bare 500 page."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.routing import BaseRoute, Match, Route

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


def _method_not_allowed(routes: Sequence[BaseRoute]) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """A 405 handler whose Allow header lists the methods of every route on the path: Starlette's lists those of
    the first one only (GET and POST /v1/candidates are two routes)."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        methods = {
            method
            for route in routes
            if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE
            for method in route.methods or ()
        }
        detail = getattr(exc, "detail", "Method Not Allowed")
        return JSONResponse({"detail": detail}, status_code=405, headers={"Allow": ", ".join(sorted(methods))})

    return handler


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI, routes: Sequence[BaseRoute]) -> None:
    """Register the JSON handlers (HTTPException and validation errors already answer ``{"detail"}``); ``routes``
    are the API's routes, for the Allow header of a 405."""
    app.add_exception_handler(RequestRejected, _rejected_handler)
    app.add_exception_handler(405, _method_not_allowed(routes))
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
