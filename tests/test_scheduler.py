"""The work slots of a server process (``app.scheduler``): work moves from a light to a heavy slot after its light
time, light work never waits behind heavy work, a full queue is refused, and a budget stops work that checks it."""

from __future__ import annotations

import threading
import time

import pytest

from app.scheduler import Budget, FairSlots, OutOfTime, Scheduler, ServerBusy, WorkCancelled


def _heavy_work(scheduler: Scheduler, started: threading.Event, release: threading.Event) -> threading.Thread:
    """A thread whose work checks its budget until it holds a heavy slot, then waits for ``release``."""

    def work(budget: Budget) -> None:
        while budget.in_light_slot:  # still in its light slot: checking moves it once its time is up
            budget.check()
            time.sleep(0.01)
        started.set()
        release.wait(30)

    def run() -> None:
        budget = Budget(60)
        scheduler.run(budget, lambda: work(budget))

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(30)
    return thread


def test_light_work_passes_heavy_work_and_a_full_queue_is_refused() -> None:
    scheduler = Scheduler(light_slots=1, heavy_slots=1, light_seconds=0.05, max_waiting=0)
    started, release = threading.Event(), threading.Event()
    heavy = _heavy_work(scheduler, started, release)
    try:
        assert scheduler.run(Budget(5), lambda: "small") == "small"  # the one light slot is free again
        budget = Budget(5)

        def second_heavy() -> None:
            while True:
                budget.check()
                time.sleep(0.01)

        with pytest.raises(ServerBusy):  # the heavy slot is taken and no one may wait for it
            scheduler.run(budget, second_heavy)
        with pytest.raises(ServerBusy):
            scheduler.run(Budget(0.2), lambda: None, heavy=True)  # max_waiting 0: refused at once
    finally:
        release.set()
        heavy.join()
    assert scheduler.run(Budget(5), lambda: "heavy", heavy=True) == "heavy"


def test_a_waiting_request_gets_the_heavy_slot_when_it_comes_free() -> None:
    scheduler = Scheduler(light_slots=2, heavy_slots=1, light_seconds=0.05, max_waiting=1)
    started, release = threading.Event(), threading.Event()
    heavy = _heavy_work(scheduler, started, release)
    threading.Timer(0.3, release.set).start()
    assert scheduler.run(Budget(30), lambda: "queued", heavy=True) == "queued"
    heavy.join()


def test_the_budget_stops_work_that_checks_it() -> None:
    scheduler = Scheduler(light_slots=1, heavy_slots=1, light_seconds=10, max_waiting=1)
    budget = Budget(0.1)

    def endless() -> None:
        while True:
            budget.check()
            time.sleep(0.01)

    with pytest.raises(OutOfTime):
        scheduler.run(budget, endless)
    cancelled = Budget(60)
    cancelled.cancel()
    with pytest.raises(WorkCancelled):
        scheduler.run(cancelled, cancelled.check)
    assert scheduler.run(Budget(1), lambda: 1) == 1  # every slot was given back


def _wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_slots_go_to_waiters_in_the_order_they_came() -> None:
    """Waiters poll every 50 ms; a poll must not cost a waiter its place in line (it did with a semaphore)."""
    slots = FairSlots(1)
    slots.acquire()
    order: list[int] = []

    def waiter(i: int) -> None:
        slots.acquire(lambda: None)
        order.append(i)
        time.sleep(0.06)  # hold the slot past other waiters' polls
        slots.release()

    threads = []
    for i in range(6):
        threads.append(threading.Thread(target=waiter, args=(i,)))
        threads[-1].start()
        _wait_for(lambda n=i + 1: slots.waiting == n)
    time.sleep(0.12)  # every waiter has polled at least once
    slots.release()
    for thread in threads:
        thread.join()
    assert order == list(range(6))
    assert slots.try_acquire()  # the one slot is free again


def test_a_waiter_that_gives_up_leaves_the_line_and_no_slot_is_lost() -> None:
    slots = FairSlots(1)
    slots.acquire()
    give_up = threading.Event()
    failed: list[Exception] = []

    def impatient() -> None:
        def still_waiting() -> None:
            if give_up.is_set():
                raise ServerBusy("gave up")

        try:
            slots.acquire(still_waiting)
        except ServerBusy as exc:
            failed.append(exc)

    thread = threading.Thread(target=impatient)
    thread.start()
    _wait_for(lambda: slots.waiting == 1)
    give_up.set()
    thread.join()
    assert failed and slots.waiting == 0
    slots.release()
    assert slots.try_acquire() and not slots.try_acquire()
    slots.release()
    with pytest.raises(ValueError, match="released more often"):
        slots.release()
