"""Sharing the machine between requests: a time budget per request, cancelled work, and two lanes of work slots.

Every request's work starts in a *light* slot. Work that goes on past ``light_seconds`` moves (at its next
:meth:`Budget.check`) to a *heavy* slot, of which there are fewer, and waits for one in a bounded queue. So a
burst of heavy requests holds at most the heavy slots, while small requests (a few spectra: well under
``light_seconds``) only ever wait for a light slot, which every request gives up within ``light_seconds``. A
process pool would isolate requests further, but each process would hold its own copy of the model and of the
candidate store (millions of fingerprints); threads share them, and the work is numpy, torch and RDKit calls kept
short by the per-request limits.

Work is cancelled cooperatively: it calls :meth:`Budget.check` between small steps (a 64 KiB read, a SMILES, a
spectrum), which raises once the client has gone or the budget has run out.

Slots are handed out first come, first served (:class:`FairSlots`). A semaphore polled with a timeout, as before,
sent a waiter that timed out to the back of the queue: under 16 clients a few requests waited many turns, and the
99th percentile latency was 7x the median.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_POLL_SECONDS = 0.05


class WorkCancelled(Exception):
    """The client went away; its work stopped."""


class OutOfTime(Exception):
    """The request's time budget ran out during its work."""


class ServerBusy(Exception):
    """No work slot came free within the request's budget, or too many requests already wait for one."""


class Budget:
    """The time budget and cancellation of one request's work, checked by the work itself."""

    def __init__(self, seconds: float, deadline: float | None = None) -> None:
        """A budget of ``seconds`` from now, or up to ``deadline`` (``time.monotonic()``) when the budget started
        earlier (with the request)."""
        self.seconds = seconds
        self.deadline = deadline if deadline is not None else time.monotonic() + seconds
        self._cancelled = threading.Event()
        self._scheduler: Scheduler | None = None  # while the work holds a light slot: whose
        self._light_until = float("inf")  # while in a light slot: when the work must move to a heavy one

    @property
    def in_light_slot(self) -> bool:
        """Whether the work holds a light slot (not yet moved to a heavy one)."""
        return self._scheduler is not None

    def cancel(self) -> None:
        """Stop the work at its next check (the client disconnected)."""
        self._cancelled.set()

    def alive(self) -> None:
        """Raise :class:`WorkCancelled` or :class:`OutOfTime` when the work must stop."""
        if self._cancelled.is_set():
            raise WorkCancelled
        if time.monotonic() > self.deadline:
            raise OutOfTime

    def check(self) -> None:
        """:meth:`alive`, and the move to a heavy slot once the work has had its ``light_seconds``."""
        self.alive()
        if self._scheduler is not None and time.monotonic() > self._light_until:
            self._scheduler.promote(self)


class FairSlots:
    """``n`` slots handed out in the order they were asked for: a released slot goes straight to the longest
    waiter, and a waiter keeps its place while it polls whether it should stop waiting."""

    def __init__(self, n: int) -> None:
        self._n = n
        self._free = n
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event] = deque()

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody waits for it."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            return False

    def acquire(self, still_waiting: Callable[[], None] | None = None) -> None:
        """Take a slot, waiting in line for it; ``still_waiting`` runs every ``_POLL_SECONDS`` while in line and may
        raise to give up the place."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            turn = threading.Event()
            self._waiters.append(turn)
        try:
            while not turn.wait(_POLL_SECONDS):
                if still_waiting is not None:
                    still_waiting()
        except BaseException:
            with self._lock:
                if turn.is_set():  # the slot came in the meantime: pass it on
                    self._release_locked()
                else:
                    self._waiters.remove(turn)
            raise

    def release(self) -> None:
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()
        elif self._free < self._n:
            self._free += 1
        else:
            raise ValueError("a slot was released more often than it was taken")

    @property
    def waiting(self) -> int:
        """Waiters in line."""
        return len(self._waiters)


class Scheduler:
    """The work slots of one server process (see the module docstring)."""

    def __init__(self, light_slots: int, heavy_slots: int, light_seconds: float, max_waiting: int) -> None:
        self.light_seconds = light_seconds
        self.max_waiting = max_waiting
        self._light = FairSlots(light_slots)
        self._heavy = FairSlots(heavy_slots)
        self._waiting = 0
        self._lock = threading.Lock()
        self._holding = threading.local()  # the slot the current thread's work holds, if any

    def run(self, budget: Budget, work: Callable[[], T], *, heavy: bool = False) -> T:
        """Run ``work`` (in the calling thread) in a light slot, or from the start in a heavy one when ``heavy``
        (work known to be large that cannot check its budget); give the slot back after it."""
        try:
            if heavy:
                self._take_heavy(budget)
            else:
                _acquire(self._light, budget)
                self._holding.slot = self._light
                budget._scheduler, budget._light_until = self, time.monotonic() + self.light_seconds
            return work()
        finally:
            budget._scheduler = None
            held = getattr(self._holding, "slot", None)
            self._holding.slot = None
            if held is not None:
                held.release()
            if held is self._heavy:
                release_memory()

    def run_background(self, work: Callable[[], T]) -> T:
        """Run background work (a chunk of a batch job) in a heavy slot, waiting as long as it takes."""
        self._heavy.acquire()
        try:
            return work()
        finally:
            self._heavy.release()
            release_memory()

    def promote(self, budget: Budget) -> None:
        """Move ``budget``'s work from its light slot to a heavy one (called by :meth:`Budget.check`). The light
        slot is given back first: work waiting for a heavy slot must not keep small requests waiting."""
        budget._scheduler = None
        self._holding.slot = None
        self._light.release()
        self._take_heavy(budget)

    def _take_heavy(self, budget: Budget) -> None:
        with self._lock:
            if self._heavy.try_acquire():
                self._holding.slot = self._heavy
                return
            if self._waiting >= self.max_waiting:
                raise ServerBusy(f"{self._waiting} requests already wait for a heavy work slot")
            self._waiting += 1
        try:
            _acquire(self._heavy, budget)
            self._holding.slot = self._heavy
        finally:
            with self._lock:
                self._waiting -= 1


def _acquire(slots: FairSlots, budget: Budget) -> None:
    """Take a slot, checking the budget while waiting: a wait past the deadline is :class:`ServerBusy`."""

    def still_waiting() -> None:
        try:
            budget.alive()
        except OutOfTime:
            raise ServerBusy(f"no work slot came free within the time budget of {budget.seconds:g} s") from None

    slots.acquire(still_waiting)


_LIBC = ctypes.util.find_library("c")
_malloc_trim = getattr(ctypes.CDLL(_LIBC), "malloc_trim", None) if _LIBC else None  # glibc only


def release_memory() -> None:
    """Give freed heap memory back to the system (glibc keeps it otherwise: a large request would leave the
    process at its peak size)."""
    if _malloc_trim is not None:
        _malloc_trim(0)
