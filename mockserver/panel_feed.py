"""`PanelFeed`: wakes the open panel pages when the building may have changed.

`create_app` pokes it with every domain event the building publishes and every move of the clock. Pokes come from
whatever thread changed the building (a request's, a test's moving the clock); each page waits on its own event
loop, so a poke reaches it through that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator


class PanelFeed:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pages: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def poke(self, *_: object) -> None:
        """Something changed (a building subscriber: called with the event, which does not matter here)."""
        with self._lock:
            pages = list(self._pages)
        for loop, woken in pages:
            with contextlib.suppress(RuntimeError):  # the page's loop has closed
                loop.call_soon_threadsafe(woken.set)

    @contextlib.contextmanager
    def page(self) -> Iterator[asyncio.Event]:
        """An event, set by every poke while the block runs (called on the page's event loop)."""
        woken = asyncio.Event()
        entry = (asyncio.get_running_loop(), woken)
        with self._lock:
            self._pages.add(entry)
        try:
            yield woken
        finally:
            with self._lock:
                self._pages.discard(entry)

    @property
    def pages(self) -> int:
        """How many pages are open."""
        with self._lock:
            return len(self._pages)
