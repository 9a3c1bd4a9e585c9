"""Writes to Redis gathered over one turn of the event loop and sent in one round trip right after it.

The journal and the push fan-out of replicas write to Redis once per request. Under load, one turn of the loop
finishes many requests; sending their writes together makes that one round trip instead of many, in the order
they were made. Outside an event loop (a test's thread, a command) each write is sent at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
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
        """Send what was gathered (also before reading what was sent, so that a replica sees its own writes)."""
        with self._lock:
            items, self._items = self._items, []
            if not items:
                return
            try:
                self._send(items)
            except redis.RedisError as exc:  # Redis out of reach: these writes are lost, the requests were answered
                log.warning("could not send %d %s to Redis: %s", len(items), self._what, exc)

    def discard(self) -> None:
        with self._lock:
            self._items = []
