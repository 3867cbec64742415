"""Running a request's work off the event loop, within its time budget, stopped when the client goes away.

The work runs in a thread, in a slot of the server's :class:`~app.scheduler.Scheduler`, and checks its
:class:`~app.scheduler.Budget` between small steps. Meanwhile the event loop stays free (``/health`` answers) and
looks every 0.1 s whether the client is still there; when it is not, the work is cancelled at its next check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from app.api.limits import DEADLINE
from app.scheduler import Budget, OutOfTime, ServerBusy, WorkCancelled
from app.service import Service
from app.settings import setting_name
from models.featurize.reading import InputTooLarge

log = logging.getLogger(__name__)
T = TypeVar("T")
_POLL_SECONDS = 0.1
RETRY_AFTER_SECONDS = 5
# nginx's code for a request whose client closed the connection: nobody reads this answer, the logs do
CLIENT_CLOSED = 499


async def run_work(request: Request, work: Callable[[Budget], T], *, heavy: bool = False) -> T:
    """``work(budget)`` in a worker thread and a work slot (from the start a heavy one when ``heavy``); what it
    raises becomes the answer: 413 for an input over a limit or work over the time budget, 503 when no slot came
    free in time, 499 when the client disconnected."""
    service: Service = request.app.state.service
    # the budget started with the request: receiving the body counted
    budget = Budget(service.settings.request_timeout_seconds, request.scope.get("state", {}).get(DEADLINE))
    future = asyncio.ensure_future(run_in_threadpool(service.scheduler.run, budget, partial(work, budget), heavy=heavy))
    while not future.done():
        await asyncio.wait({future}, timeout=_POLL_SECONDS)
        if not future.done() and await request.is_disconnected():
            budget.cancel()
    try:
        return future.result()
    except InputTooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    except OutOfTime:
        raise HTTPException(
            413,
            f"the request needed more than its time budget of {budget.seconds:g} s "
            f"({setting_name('request_timeout_seconds')}); send large batches to POST /v1/jobs",
        ) from None
    except ServerBusy as exc:
        raise HTTPException(
            503, f"the server is busy: {exc}; retry later", {"Retry-After": str(RETRY_AFTER_SECONDS)}
        ) from None
    except WorkCancelled:
        log.info("%s %s: the client disconnected; its work was stopped", request.method, request.url.path)
        raise HTTPException(CLIENT_CLOSED, "the client closed the connection; the work was stopped") from None
