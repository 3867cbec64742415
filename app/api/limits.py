"""Bounds on receiving a request: the upload limit (``MSVAE_MAX_UPLOAD_MB``), 413 for a body over it, judged by
``Content-Length`` before anything is read and by the bytes actually received (chunked uploads, lying headers);
and the request's time budget (``MSVAE_REQUEST_TIMEOUT_SECONDS``), 408 when the body has not arrived within it.
The budget's deadline is kept in the request state for the work that follows (``app.api.work``)."""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import setting_name

DEADLINE = "deadline"  # request state key: time.monotonic() when the request's time budget runs out


class RequestLimitMiddleware:
    """Pure ASGI middleware: answers 413 at once when ``Content-Length`` exceeds ``max_bytes``, and otherwise raises
    an ``HTTPException`` from ``receive`` as soon as the streamed body passes it (413) or the body is still
    incomplete when ``timeout_seconds`` have passed since the request came (408); the app's exception handling turns
    that into the JSON answer."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    def _too_large(self) -> str:
        return (
            f"request body over the upload limit of {self.max_bytes / 1024 / 1024:g} MiB "
            f"({setting_name('max_upload_mb')})"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, {"detail": self._too_large()})
            return
        deadline = time.monotonic() + self.timeout_seconds
        scope.setdefault("state", {})[DEADLINE] = deadline
        received = 0
        complete = False

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete:  # after the body: only a disconnect can come, and waiting for it is the caller's choice
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"the request body did not arrive within the time budget of {self.timeout_seconds:g} s "
                    f"({setting_name('request_timeout_seconds')})",
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._too_large())
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)


async def _send_json(send: Send, status: int, body: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    # The body was not read: ask the client to close, so the unread bytes never reach another request.
    headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
