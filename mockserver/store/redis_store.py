"""The Redis store: one building shared by several mock replicas.

Layout, every key under ``{namespace}:``:

- ``k:{kind}`` — a hash, record key -> ``"{version}\\n{data JSON}\\n{index JSON}"``;
- ``i:{index}\\x1f{partition}`` — a sorted set whose members all have score 0 and sort by their bytes:
  ``{sort key as 16 hex digits, offset by 2**63}{record key}\\x00{kind}``, which is the (sort, key, kind) order of
  the other backends, exact for every 64-bit sort key (scores, being doubles, would not be past 2**53). Ranks give
  offsets and counts in O(log n); lexicographic ranges give cursors;
- ``kinds`` — the set of kinds that hold records; ``seq`` — a hash of counters.

Isolation across replicas comes from one lock per namespace (redis-py's `Lock`, a key with a token and an
expiry): every write, and every `transaction` block as a whole, runs under it, so the building's
read-check-write steps are serialisable across processes. A transaction writes through to Redis and keeps an undo
log; if the block raises, the log restores what it changed before the lock is released. Reads outside a
transaction take no lock; the building reads inside its transactions, so it never sees another replica's writes
half done.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import redis

from .base import IndexEntries, Page, Record, VersionConflict
from .memory import (
    DUMP_FORMAT,
    check_page_args,
    checked_put,
    decode_data,
    dump_record,
    undo_scope,
)
from .memory import parse_dump as _parse_dump

_OFFSET = 2**63
_LOCK_SECONDS = 30  # a replica that dies holding the lock holds it this long at most


def _sort_hex(sort: int) -> str:
    return f"{sort + _OFFSET:016x}"


def _member(sort: int, key: str, kind: str) -> str:
    return f"{_sort_hex(sort)}{key}\x00{kind}"


def _parse_member(member: str) -> tuple[int, str, str]:
    key, kind = member[16:].rsplit("\x00", 1)
    return int(member[:16], 16) - _OFFSET, key, kind


def _encode_value(version: int, data: str, index: dict[str, tuple[str, int]]) -> str:
    return f"{version}\n{data}\n{orjson.dumps(index).decode()}"


def _decode_value(value: str) -> tuple[int, str, dict[str, tuple[str, int]]]:
    version, data, index = value.split("\n", 2)
    return int(version), data, {name: (part, sort) for name, (part, sort) in orjson.loads(index).items()}


class RedisStore:
    """A `Store` in a Redis database, shared by every process that opens the same URL and namespace."""

    #: several processes see the same state: the runtime syncs the clock and fans pushes out through Redis
    shared = True
    #: other replicas write unseen, so no answer read from this store may be kept
    revision = None

    def __init__(self, url: str, *, namespace: str = "doorcodes") -> None:
        if not namespace or any(c in namespace for c in "*?[]\\"):
            raise ValueError("the namespace must be non-empty and free of glob characters")
        self.url = url
        self.namespace = namespace
        self._redis = redis.Redis.from_url(url, decode_responses=True)
        try:
            self._redis.ping()  # fail at start, with the URL in the message, rather than on the first request
        except redis.RedisError as exc:
            raise ConnectionError(f"cannot reach Redis at {url}: {exc}") from exc
        # Short polls: redis-py sleeps 100 ms between attempts by default, which would be most of a request.
        self._lock = self._redis.lock(
            f"{namespace}:lock", timeout=_LOCK_SECONDS, blocking_timeout=_LOCK_SECONDS, sleep=0.001
        )
        self._held = 0
        #: undo log of the open transaction: ("rec", kind, key, old value or None) / ("seq", name, old or None)
        self._undo: list[tuple[str, str, Any, Any]] | None = None

    # -- keys ----------------------------------------------------------------------------------------------

    def _kind_key(self, kind: str) -> str:
        return f"{self.namespace}:k:{kind}"

    def _index_key(self, index: str, partition: str) -> str:
        return f"{self.namespace}:i:{index}\x1f{partition}"

    # -- reads ---------------------------------------------------------------------------------------------

    def get(self, kind: str, key: str) -> Record | None:
        """The record, or None."""
        value = self._redis.hget(self._kind_key(kind), key)
        return None if value is None else _record(kind, key, value)

    def exists(self, kind: str, key: str) -> bool:
        """Whether the record is there, without fetching it."""
        return bool(self._redis.hexists(self._kind_key(kind), key))

    def get_many(self, kind: str, keys: list[str]) -> list[Record | None]:
        """Several records of one kind in one round trip (beyond the `Store` protocol; callers check for it)."""
        values = self._redis.hmget(self._kind_key(kind), keys)
        return [None if value is None else _record(kind, key, value) for key, value in zip(keys, values, strict=True)]

    def page(
        self,
        index: str,
        partition: str,
        *,
        limit: int,
        offset: int = 0,
        after: int | None = None,
        reverse: bool = False,
    ) -> Page:
        """Up to ``limit`` records of one partition in (sort, key) order; see `Store.page`."""
        check_page_args(limit, offset)
        name = self._index_key(index, partition)
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(name)
            if limit == 0:
                pipe.echo("")
            elif after is None:
                if reverse:
                    pipe.zrevrange(name, offset, offset + limit - 1)
                else:
                    pipe.zrange(name, offset, offset + limit - 1)
            elif reverse:
                pipe.zrevrangebylex(name, "(" + _sort_hex(after), "-", start=offset, num=limit)
            else:
                pipe.zrangebylex(name, "[" + _sort_hex(after + 1), "+", start=offset, num=limit)
            total, members = pipe.execute()
        members = members or []
        if not members:
            return Page([], total)
        parsed = [_parse_member(member) for member in members]
        with self._redis.pipeline(transaction=False) as pipe:
            for _, key, kind in parsed:
                pipe.hget(self._kind_key(kind), key)
            values = pipe.execute()
        return Page([_record(kind, key, value) for (_, key, kind), value in zip(parsed, values, strict=True)], total)

    def count(self, index: str, partition: str) -> int:
        """How many entries one partition holds (ZCARD is O(1))."""
        return self._redis.zcard(self._index_key(index, partition))

    def lowest(self, index: str, partition: str) -> int | None:
        """The smallest sort key of one partition, or None."""
        first = self._redis.zrange(self._index_key(index, partition), 0, 0)
        return _parse_member(first[0])[0] if first else None

    def scan(self, kind: str) -> Iterator[Record]:
        """Every record of one kind in key order (reads the whole kind: for snapshots and small kinds)."""
        values = self._redis.hgetall(self._kind_key(kind))
        return iter([_record(kind, key, values[key]) for key in sorted(values)])

    def is_empty(self) -> bool:
        """True when the store holds no record."""
        return self._redis.scard(f"{self.namespace}:kinds") == 0

    def dump(self) -> dict[str, Any]:
        """The whole state as JSON-able data, in the same shape as the other backends."""
        records = []
        for kind in sorted(self._redis.smembers(f"{self.namespace}:kinds")):
            values = self._redis.hgetall(self._kind_key(kind))
            for key in sorted(values):
                version, data, index = _decode_value(values[key])
                records.append(dump_record(kind, key, version, data, index))
        sequences = {name: int(value) for name, value in self._redis.hgetall(f"{self.namespace}:seq").items()}
        return {"format": DUMP_FORMAT, "records": records, "sequences": dict(sorted(sequences.items()))}

    # -- writes --------------------------------------------------------------------------------------------

    def put(
        self,
        kind: str,
        key: str,
        data: dict[str, Any],
        *,
        index: IndexEntries | None = None,
        expected_version: int | None = None,
    ) -> int:
        """Create or replace a record and all its index entries; CAS on ``expected_version``. Answers the new
        version."""
        encoded, entries = checked_put(kind, key, data, index)
        with self._locked():
            old = self._redis.hget(self._kind_key(kind), key)
            actual = 0 if old is None else _decode_value(old)[0]
            if expected_version is not None and expected_version != actual:
                raise VersionConflict(kind, key, expected_version, actual)
            new = _encode_value(actual + 1, encoded, entries)
            if self._undo is not None:
                self._undo.append(("rec", kind, key, old))
            self._replace(kind, key, old, new)
        return actual + 1

    def delete(self, kind: str, key: str, *, expected_version: int | None = None) -> bool:
        """Remove a record and its index entries; False when there was none."""
        with self._locked():
            old = self._redis.hget(self._kind_key(kind), key)
            actual = 0 if old is None else _decode_value(old)[0]
            if expected_version is not None and expected_version != actual:
                raise VersionConflict(kind, key, expected_version, actual)
            if old is None:
                return False
            if self._undo is not None:
                self._undo.append(("rec", kind, key, old))
            self._replace(kind, key, old, None)
            return True

    def next_id(self, sequence: str, start: int = 1) -> int:
        """The next value of a named counter; the first call answers ``start``."""
        with self._locked():
            current = self._redis.hget(f"{self.namespace}:seq", sequence)
            value = start if current is None else int(current) + 1
            if self._undo is not None:
                self._undo.append(("seq", sequence, None, current))
            self._redis.hset(f"{self.namespace}:seq", sequence, value)
            return value

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes in the block are kept, or none; other replicas wait for the block to end. An inner
        block joins the outer one; if it raises, its own writes are undone before the exception leaves it."""
        with self._locked(), undo_scope(self):
            yield

    def load(self, state: dict[str, Any]) -> None:
        """Replace the whole state with what `dump` gave; on a malformed dump nothing changes."""
        records, sequences = _parse_dump(state)
        with self._locked():
            self._remember_all()
            self._write_all(records, sequences)

    def _write_all(self, records: list[Any], sequences: dict[str, int]) -> None:
        self._delete_namespace()
        with self._redis.pipeline(transaction=True) as pipe:
            for kind, key, version, data, index in records:
                pipe.hset(self._kind_key(kind), key, _encode_value(version, data, index))
                pipe.sadd(f"{self.namespace}:kinds", kind)
                for name, (part, sort) in index.items():
                    pipe.zadd(self._index_key(name, part), {_member(sort, key, kind): 0})
            if sequences:
                pipe.hset(f"{self.namespace}:seq", mapping=sequences)
            pipe.execute()

    def clear(self) -> None:
        """Remove every record, index entry and counter of this namespace."""
        with self._locked():
            self._remember_all()
            self._delete_namespace()

    def close(self) -> None:
        """Release the connection pool; the store must not be used afterwards."""
        self._redis.close()

    # -- internals -----------------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Re-entrant within this store object; the building's own lock keeps one thread in here at a time.
        if self._held == 0:
            # A fresh token per hold: redis-py's Lock refuses to release a token it did not set.
            self._lock.local.token = None
            if not self._lock.acquire(token=uuid.uuid4().hex):
                raise TimeoutError(f"the state lock of {self.namespace!r} stayed held for {_LOCK_SECONDS} s")
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if self._held == 0:
                self._lock.release()

    def _remember_all(self) -> None:
        # Clearing or loading inside a transaction must be undoable too: keep the whole state (these are rare
        # control-API operations, so copying everything is fine).
        if self._undo is not None:
            self._undo.append(("all", "", None, self.dump()))

    def _delete_namespace(self) -> None:
        keys = [
            key
            for key in self._redis.scan_iter(match=f"{self.namespace}:*", count=1000)
            if key != f"{self.namespace}:lock"
        ]
        for start in range(0, len(keys), 1000):
            self._redis.delete(*keys[start : start + 1000])

    def _replace(self, kind: str, key: str, old: str | None, new: str | None) -> None:
        """Move one record from ``old`` to ``new`` (None: absent) in one MULTI, touching only changed entries."""
        old_index = {} if old is None else _decode_value(old)[2]
        new_index = {} if new is None else _decode_value(new)[2]
        with self._redis.pipeline(transaction=True) as pipe:
            for name, (part, sort) in old_index.items():
                if new_index.get(name) != (part, sort):
                    pipe.zrem(self._index_key(name, part), _member(sort, key, kind))
            for name, (part, sort) in new_index.items():
                if old_index.get(name) != (part, sort):
                    pipe.zadd(self._index_key(name, part), {_member(sort, key, kind): 0})
            if new is None:
                pipe.hdel(self._kind_key(kind), key)
            else:
                pipe.hset(self._kind_key(kind), key, new)
                pipe.sadd(f"{self.namespace}:kinds", kind)
            pipe.execute()
        if new is None and self._redis.hlen(self._kind_key(kind)) == 0:
            self._redis.srem(f"{self.namespace}:kinds", kind)

    def _rollback_to(self, mark: int) -> None:
        assert self._undo is not None
        log = self._undo
        while len(log) > mark:
            what, name, key, before = log.pop()
            if what == "all":
                self._write_all(*_parse_dump(before))
            elif what == "rec":
                current = self._redis.hget(self._kind_key(name), key)
                self._replace(name, key, current, before)
            elif before is None:
                self._redis.hdel(f"{self.namespace}:seq", name)
            else:
                self._redis.hset(f"{self.namespace}:seq", name, before)


def _record(kind: str, key: str, value: str) -> Record:
    version, data, index = _decode_value(value)
    return Record(kind, key, version, decode_data(data), index)
