"""Writes to Redis gathered over one turn of the event loop and sent together, in order, by a thread of their own.

The journal and the push fan-out of replicas write to Redis once per request, and nothing in the request waits for
those writes. Under load, one turn of the loop finishes many requests: their writes go in one pipelined round trip,
and the loop does not wait for it (a blocking round trip waits for Redis to be scheduled, which on a busy machine
took milliseconds). Reading what was written (the journal) drains what is on its way first.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

import redis

log = logging.getLogger("mockserver")

T = TypeVar("T")


class TurnBatch(Generic[T]):
    def __init__(self, send: Callable[[list[T]], None], what: str) -> None:
        self._send = send
        self._what = what
        self._items: list[T] = []
        self._lock = threading.Lock()
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"doorcodes-{what.replace(' ', '-')}")

    def add(self, item: T) -> None:
        with self._lock:
            self._items.append(item)
            first = len(self._items) == 1
        if not first:
            return  # a flush is scheduled already
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand what was gathered to the sender thread."""
        with self._lock:
            items, self._items = self._items, []
            if items:
                self._sender.submit(self._send_logged, items)

    def drain(self) -> None:
        """Flush, and wait until everything handed over has been sent."""
        self.flush()
        self._sender.submit(lambda: None).result()

    def discard(self) -> None:
        with self._lock:
            self._items = []

    def close(self) -> None:
        self.flush()
        self._sender.shutdown(wait=True)

    def _send_logged(self, items: list[T]) -> None:
        try:
            self._send(items)
        except redis.RedisError as exc:  # Redis out of reach: these writes are lost, the requests were answered
            log.warning("could not send %d %s to Redis: %s", len(items), self._what, exc)
