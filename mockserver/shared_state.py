"""The request journal and the rate-limit counters in Redis, for replicas that share one building.

Each replica records into one Redis list and counts into one Redis hash per limit key, so the journal read
through any replica's control API holds every replica's requests, and a key's calls count against one limit
whichever replica they reach.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

import orjson
import redis
import redis.asyncio

from .http.journal import Journal, JournalEntry, redacted
from .store.base import StoreUnavailable
from .turn_batch import TurnBatch

# Atomic check-and-count of one fixed window, with FixedWindowLimiter's semantics (times as decimal strings: Lua's
# own number formatting would round epoch seconds). Keys expire a day after their last hit (real time).
_HIT = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local aligned = ARGV[4] == '1'
local start = now
if aligned then start = math.floor(now / window) * window end
local started = tonumber(redis.call('HGET', KEYS[1], 's'))
local count = tonumber(redis.call('HGET', KEYS[1], 'c'))
if started == nil or now >= started + window or (aligned and started ~= start) then
  started, count = start, 0
end
local wait = 0
if count >= limit then
  wait = math.max(1, math.ceil(started + window - now))
else
  count = count + 1
end
redis.call('HSET', KEYS[1], 's', string.format('%.6f', started), 'c', count)
redis.call('EXPIRE', KEYS[1], 86400)
return wait
"""


class RedisLimiter:
    """`FixedWindowLimiter`, counted in Redis."""

    def __init__(self, url: str, namespace: str) -> None:
        self._redis = redis.Redis.from_url(url, decode_responses=True)
        # Counting is on the request path: the asyncio client keeps the event loop serving while Redis answers.
        self._async = redis.asyncio.Redis.from_url(url, decode_responses=True, socket_timeout=5)
        self._prefix = f"{namespace}:rl:"
        self._hit = self._async.register_script(_HIT)

    async def hit(self, key: tuple[str, ...], *, limit: int, window: float, now: float, aligned: bool) -> int:
        name = self._prefix + "\x1f".join(key)
        args: list[str | int] = [f"{now:.6f}", f"{window:.6f}", limit, "1" if aligned else "0"]
        try:
            return int(await self._hit(keys=[name], args=args))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"the rate-limit counters in Redis: {exc}") from exc

    def clear(self) -> None:
        keys = list(self._redis.scan_iter(match=self._prefix + "*", count=1000))
        if keys:
            self._redis.delete(*keys)


# One call for the entries of a batch (ARGV: the journal's size, then the entries): each id comes from a Redis
# counter as its entry is appended.
_APPEND = """
local last = redis.call('INCRBY', KEYS[2], #ARGV - 1)
for at = 2, #ARGV do
  redis.call('RPUSH', KEYS[1], (last - #ARGV + at) .. ' ' .. ARGV[at])
end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
return last
"""


def _encode(entry: JournalEntry) -> bytes:
    return orjson.dumps(
        [
            entry.at.isoformat(),
            entry.method,
            entry.path,
            entry.query.decode("latin-1"),
            entry.status,
            entry.duration_ms,
            entry.operation_id,
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in entry.request_headers],
            entry.request_body.decode("latin-1"),
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in entry.response_headers],
            entry.response_body.decode("latin-1"),
        ]
    )


def _decode(raw: bytes | str) -> JournalEntry:
    if isinstance(raw, str):  # a client that decodes answers
        raw = raw.encode()
    id_, fields = raw.split(b" ", 1)
    (at, method, path, query, status, duration, operation, req_h, req_b, resp_h, resp_b) = orjson.loads(fields)
    return JournalEntry(
        id=int(id_),
        at=datetime.fromisoformat(at),
        method=method,
        path=path,
        query=query.encode("latin-1"),
        status=status,
        duration_ms=duration,
        operation_id=operation,
        request_headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in req_h],
        request_body=req_b.encode("latin-1"),
        response_headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp_h],
        response_body=resp_b.encode("latin-1"),
    )


class RedisJournal(Journal):
    """The journal as one capped Redis list; entries are redacted before they are stored, as in memory."""

    def __init__(self, url: str, namespace: str, size: int = 1000) -> None:
        super().__init__(size)
        # A bound on each call: the sender thread must not hang on a Redis that stopped answering.
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._list = f"{namespace}:journal"
        self._ids_key = f"{namespace}:journal-ids"
        self._append = self._redis.register_script(_APPEND)
        self._batch: TurnBatch[bytes] = TurnBatch(self._send, "journal entries")

    def _send(self, encoded: list[bytes]) -> None:
        self._append(keys=[self._list, self._ids_key], args=[self.size, *encoded])

    def resize(self, size: int) -> None:
        self.size = size
        self._redis.ltrim(self._list, -max(size, 1), -1)

    def next_id(self) -> int:
        return 0  # numbered by Redis as it is appended, so that replicas never share an id

    def add(self, entry: JournalEntry) -> None:
        if self.size <= 0:
            return
        self._batch.add(_encode(redacted(entry)))

    def clear(self) -> None:
        self._batch.discard()
        self._batch.drain()
        self._redis.delete(self._list)

    def _all(self) -> list[JournalEntry]:
        self._batch.drain()
        entries = [_decode(raw) for raw in self._redis.lrange(self._list, 0, -1)]
        entries.sort(key=lambda entry: entry.id)  # replicas append concurrently; ids give the order
        return entries

    def close(self) -> None:
        self._batch.close()
        with contextlib.suppress(redis.RedisError):
            self._redis.close()


__all__ = ["RedisJournal", "RedisLimiter"]
