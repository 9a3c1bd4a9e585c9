"""Writes to Redis gathered over one turn of the event loop and sent together, in order, by a thread of their own.

The journal and the push fan-out of replicas write to Redis once per request, and nothing in the request waits for
those writes. Under load, one turn of the loop finishes many requests: their writes go in one pipelined round trip,
and the loop does not wait for it (a blocking round trip waits for Redis to be scheduled, which on a busy machine
took milliseconds). While a send is under way, what the following turns add waits for it and goes in the next one:
a thread woken once per turn competed with the event loop for the interpreter (a replica answering VMS creates
served 30% more with its journal off). Reading what was written (the journal) drains what is on its way first.
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
    """``send`` gets the items in the order they were added, in lists, from one thread at a time."""

    def __init__(self, send: Callable[[list[T]], None], what: str) -> None:
        self._send = send
        self._what = what
        self._items: list[T] = []
        #: a send is under way: it takes what was added meanwhile once it is done
        self._busy = False
        self._lock = threading.Lock()
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"doorcodes-{what.replace(' ', '-')}")

    def add(self, item: T) -> None:
        with self._lock:
            self._items.append(item)
            first = len(self._items) == 1 and not self._busy
        if not first:
            return  # a flush is scheduled already, or the send under way takes it
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand what was gathered to the sender thread, unless a send under way will take it."""
        with self._lock:
            if self._busy or not self._items:
                return
            items, self._items = self._items, []
            self._busy = True
        self._sender.submit(self._send_all, items)

    def drain(self) -> None:
        """Flush, and wait until everything handed over has been sent."""
        while True:
            self.flush()
            self._sender.submit(lambda: None).result()
            with self._lock:
                if not (self._busy or self._items):
                    return

    def discard(self) -> None:
        with self._lock:
            self._items = []

    def close(self) -> None:
        self.flush()
        self._sender.shutdown(wait=True)

    def _send_all(self, items: list[T]) -> None:
        """Send ``items``, then what was added meanwhile, until nothing is left."""
        while items:
            self._send_logged(items)
            with self._lock:
                items, self._items = self._items, []
                if not items:
                    self._busy = False

    def _send_logged(self, items: list[T]) -> None:
        try:
            self._send(items)
        except redis.RedisError as exc:  # Redis out of reach: these writes are lost, the requests were answered
            log.warning("could not send %d %s to Redis: %s", len(items), self._what, exc)
