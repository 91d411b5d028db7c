"""Admission control for searches in a web process: at most PRODRAG_SEARCH_CONCURRENCY run at
once and twice as many more may wait, each for at most PRODRAG_SEARCH_QUEUE_SECONDS. A search that
finds the waiting line full, or waits its time out, is refused with `Overloaded` (the API
answers 503 with Retry-After, a page a 503 page that reloads itself), instead of queueing
until its client times out, and its thread is free again at once for other requests.
Searches are where the CPU goes (embedding the query, the ranking statement); a streamed
answer's wait for the language model holds no slot."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from django.conf import settings

from core import metrics

# Searches that may wait for each slot: a burst of them finds room in line (at 50 users of
# bench.load, a line of one per slot refused a few with answers being generated).
WAITING_PER_SLOT = 2
# Seconds a refused client is asked to wait.
OVERLOADED_RETRY_AFTER = 2


class Overloaded(Exception):
    """Too many searches at once in this process; nothing was done."""


class _Slots:
    def __init__(self, size: int) -> None:
        self.size = size
        self.free = threading.BoundedSemaphore(size)
        self.lock = threading.Lock()
        self.taken_or_awaited = 0

    def acquire(self, wait: float) -> bool:
        with self.lock:
            if self.taken_or_awaited >= WAITING_PER_SLOT * self.size + self.size:
                return False  # the line is full: refused without waiting
            self.taken_or_awaited += 1
        if self.free.acquire(timeout=wait):
            return True
        with self.lock:
            self.taken_or_awaited -= 1
        return False

    def release(self) -> None:
        self.free.release()
        with self.lock:
            self.taken_or_awaited -= 1


@cache
def _slots(size: int) -> _Slots:
    return _Slots(size)


@contextmanager
def search_admitted() -> Iterator[None]:
    slots = _slots(settings.SEARCH_CONCURRENCY)
    if not slots.acquire(settings.SEARCH_QUEUE_SECONDS):
        metrics.SEARCHES_SHED.inc()
        raise Overloaded(
            "The server is busy with other searches; nothing was done. "
            f"Try again in {OVERLOADED_RETRY_AFTER} seconds."
        )
    try:
        yield
    finally:
        slots.release()
