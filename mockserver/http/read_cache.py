"""Answers to reads, kept while nothing they were made from can have changed.

A read's answer depends on the request, the building's state and the simulated time. A handler that knows how its
answer depends on time says so by calling `mockserver.vendors._context.fresh_until` with the moment its answer
would change if the building did not (a QR code's expiry, a listed code turning expired); handlers that do not call
it are never kept. The answer is then served again, byte for byte, to the same request (same operation, path,
query string, scheme and headers) while:

- the store's `revision` is the one it had just before the handler ran (no write since, by anyone, the handler
  included: a read that wrote, such as one that drew a new QR code, is kept only from its next asking), and
- the clock is still between the moment the handler started and the earlier of the handler's moment and the
  building's `next_change` (the first deadline at which settling would rewrite state).

Security, rate limits, injected faults and request validation run on every request before the cache is asked;
only the handler and the rendering are skipped. A store that other processes write (Redis) has no revision, and
nothing is kept. tests/mockserver/test_read_cache.py holds a mock with the cache to the answers of one without it.
"""

from __future__ import annotations

import typing as t
from collections import OrderedDict

from starlette.responses import Response

if t.TYPE_CHECKING:
    from ..domain.building import Building
    from ..domain.clock import Clock
    from ..store.base import Store

#: answers kept at most; the oldest unused one goes first
DEFAULT_SIZE = 512
#: a larger body is not kept (a VMS page of 100 codes is about 42 kB)
MAX_BODY_BYTES = 64 * 1024


class _Sent(Response):
    """A kept answer, sent again. It has a header list of its own, because a middleware may add to the list it is
    sent (Starlette's CORS middleware does); the body and headers are already rendered, so nothing is redone."""

    def __init__(self, kept: Response) -> None:  # not Response.__init__, which would render the content again
        self.status_code = kept.status_code
        self.media_type = kept.media_type
        self.background = None
        self.body = kept.body
        self.raw_headers = list(kept.raw_headers)


class _Entry(t.NamedTuple):
    response: Response
    revision: t.Hashable
    since: float
    until: float


class Moment(t.NamedTuple):
    """The store's revision and the clock's time when a handler was about to read."""

    revision: t.Hashable
    now: float


class ReadCache:
    def __init__(self, store: Store, clock: Clock, building: Building, *, size: int = DEFAULT_SIZE) -> None:
        self._store = store
        self._clock = clock
        self._building = building
        self._size = size
        self._entries: OrderedDict[t.Hashable, _Entry] = OrderedDict()
        self.hits = 0

    def get(self, key: t.Hashable) -> Response | None:
        """The kept answer to this request, if it is still the answer."""
        entry = self._entries.get(key)
        if entry is not None:
            now = self._clock.timestamp()
            if entry.revision == self._store.revision and entry.since <= now < entry.until:
                self._entries.move_to_end(key)
                self.hits += 1
                return _Sent(entry.response)
            del self._entries[key]
        return None

    def moment(self) -> Moment:
        """Taken before the handler runs: an answer is kept under the revision it was computed from, so a write
        during the handler (its own, or another thread's through an embedding test) leaves nothing stale."""
        return Moment(self._store.revision, self._clock.timestamp())

    def put(self, key: t.Hashable, response: Response, fresh_until: float, started: Moment) -> None:
        """Keep ``response``, made for the request ``key`` from the state at ``started``, until the store changes
        or the clock reaches ``fresh_until`` or the building's next deadline."""
        if started.revision is None or len(response.body) > MAX_BODY_BYTES:
            return
        until = min(fresh_until, self._building.next_change())
        if not started.now < until:  # also refuses a NaN
            return
        self._entries[key] = _Entry(response, started.revision, started.now, until)
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
