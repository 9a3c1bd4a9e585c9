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

from .http.journal import Journal, JournalEntry, redacted
from .store.base import StoreUnavailable
from .store.redis_turns import DirectScript, TurnPipeline
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
    """`FixedWindowLimiter`, counted in Redis. Each count is a command of ``turns``, the replica's pipeline of what
    its requests await (`mockserver.store.redis_turns`): the counts of one turn of the event loop go to Redis in one
    write, with the turn's catch-up of the building."""

    def __init__(self, url: str, namespace: str, turns: TurnPipeline) -> None:
        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self._turns = turns
        self._prefix = f"{namespace}:rl:"
        self._hit = turns.script(_HIT)

    async def hit(self, key: tuple[str, ...], *, limit: int, window: float, now: float, aligned: bool) -> int:
        name = self._prefix + "\x1f".join(key)
        args: list[str | int] = [f"{now:.6f}", f"{window:.6f}", limit, "1" if aligned else "0"]
        try:
            return int(await self._turns.run_script(self._hit, [name], args))
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
    """An entry as Redis keeps it: its fields but the bodies as JSON on the first line, then the two bodies as they
    are, the request's length in the JSON. Bodies written into the JSON would be escaped character by character
    (as latin-1 text); a page of VMS codes is 10 kB, and that escaping was 6% of a replica's time serving it."""
    head = orjson.dumps(
        [
            entry.at.isoformat(),
            entry.method,
            entry.path,
            entry.query.decode("latin-1"),
            entry.status,
            entry.duration_ms,
            entry.operation_id,
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in entry.request_headers],
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in entry.response_headers],
            len(entry.request_body),
        ]
    )
    return b"%b\n%b%b" % (head, entry.request_body, entry.response_body)


def _decode(raw: bytes | str) -> JournalEntry:
    if isinstance(raw, str):  # a client that decodes answers
        raw = raw.encode()
    id_, rest = raw.split(b" ", 1)
    head, _, bodies = rest.partition(b"\n")  # orjson escapes every newline inside the JSON
    fields = orjson.loads(head)
    if len(fields) == 11:  # written by an earlier version, bodies inside the JSON: (a namespace outlives a replica)
        (at, method, path, query, status, duration, operation, req_h, req_b, resp_h, resp_b) = fields
        request_body, response_body = req_b.encode("latin-1"), resp_b.encode("latin-1")
    else:
        (at, method, path, query, status, duration, operation, req_h, resp_h, request_length) = fields
        request_body, response_body = bodies[:request_length], bodies[request_length:]
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
        request_body=request_body,
        response_headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp_h],
        response_body=response_body,
    )


class RedisJournal(Journal):
    """The journal as one capped Redis list; entries are redacted before they are stored, as in memory."""

    def __init__(self, url: str, namespace: str, size: int = 1000) -> None:
        super().__init__(size)
        # A bound on each call: the sender thread must not hang on a Redis that stopped answering.
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._list = f"{namespace}:journal"
        self._ids_key = f"{namespace}:journal-ids"
        self._append = DirectScript(self._redis, _APPEND)  # called by the sender thread only
        self._batch: TurnBatch[JournalEntry] = TurnBatch(self._send, "journal entries")

    def _send(self, entries: list[JournalEntry]) -> None:
        # Redacted and encoded here, in the sender thread: the event loop only hands the entry over, and the
        # thread does this while the loop waits on Redis (a commit) instead of on top of its own work.
        encoded = [_encode(redacted(entry)) for entry in entries]
        self._append(keys=[self._list, self._ids_key], args=[self.size, *encoded])

    def resize(self, size: int) -> None:
        self.size = size
        self._redis.ltrim(self._list, -max(size, 1), -1)

    def next_id(self) -> int:
        return 0  # numbered by Redis as it is appended, so that replicas never share an id

    def add(self, entry: JournalEntry) -> None:
        if self.size <= 0:
            return
        self._batch.add(entry)

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
            self._append.close()
            self._redis.close()


__all__ = ["RedisJournal", "RedisLimiter"]
