"""The Redis store: one building shared by several mock replicas.

Each replica keeps the whole state in its own memory (a `MemoryStore`, the *mirror*) and reads from it; Redis holds
the state the replicas agree on, with a revision and a log of the last commits. Layout, every key under
``{namespace}:``:

- ``k:{kind}`` — a hash, record key -> ``"{version}\\n{data JSON}\\n{index JSON}"``;
- ``kinds`` — the set of kinds that hold records; ``seq`` — a hash of counters;
- ``rev`` — how many commits the namespace has seen; ``log`` — what each of the last commits changed.

Catching up is one script call: it answers the revision and, when the mirror is behind, the log entries it missed
(or tells it to reload everything, when the log no longer reaches back that far). The mirror catches up before a
read outside a transaction, at the start of a transaction, or once per `view` (one request).

A transaction writes to the mirror (which keeps the undo log) and notes what it changed; the outermost block then
sends all of it in one script call, which applies it only if the revision is still the one the mirror was at.
Redis runs a script whole or not at all, so a replica that dies anywhere in a commit leaves all of it or none, and
there is no lock for a dead replica to hold. When another replica committed first, the script answers what changed
instead: the mirror undoes the block, catches up, and the block is refused (`CommitConflict`) to be run again.

A test may make the process kill itself inside a commit: ``DOORCODES_DIE_IN_COMMIT=POINT:KIND`` (POINT ``before``
sending, ``half`` sent, ``after`` Redis applied it) acts on the first commit that writes a record of KIND.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
import redis

from .base import CommitConflict, IndexEntries, Page, Record, StoreUnavailable
from .memory import DumpedRecord, MemoryStore, parse_dump
from .redis_turns import TurnPipeline

T = TypeVar("T")

#: commits kept in the log: a replica further behind reloads the whole state
LOG_LENGTH = 10_000
#: how long one call to Redis may take, and how long a write outside a transaction is retried under contention
TIMEOUT_S = 0.5
#: how long a commit that replaces everything may take (it holds Redis, and the other replicas, that long)
BULK_TIMEOUT_S = 30.0
#: records read per call when a replica reloads everything (each call holds Redis only briefly)
RELOAD_CHUNK = 2_000
DIE_ENV = "DOORCODES_DIE_IN_COMMIT"

# Answers {ok, revision} when the caller's revision (ARGV[1] / mine) is current, {ok, revision, entries...} with
# the log entries after it, or {ok, revision, 'reload'} when the log does not reach back to it.
_SINCE = """
local function since(ok, rev, mine)
  if rev == mine then return {ok, rev} end
  local behind = rev - mine
  if behind < 0 or behind > redis.call('LLEN', KEYS[2]) then return {ok, rev, 'reload'} end
  local out = redis.call('LRANGE', KEYS[2], -behind, -1)
  table.insert(out, 1, rev)
  table.insert(out, 1, ok)
  return out
end
"""

# KEYS: rev, log. ARGV: the caller's revision.
_CATCH_UP = (
    _SINCE
    + """
return since(1, tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[1]))
"""
)

# KEYS: rev, log, kinds, seq. ARGV: the caller's revision, the log entry ('' for a replacement of everything), the
# log's length, the prefix of the kinds' hashes, '1' to replace everything, the number of records n, n times
# (kind, key, value or '' to delete), then (counter, value or '') pairs. Refused ({0, ...} as `since`) when another
# commit came first.
_COMMIT = (
    _SINCE
    + """
local rev = tonumber(redis.call('GET', KEYS[1]) or '0')
if rev ~= tonumber(ARGV[1]) then return since(0, rev, tonumber(ARGV[1])) end
if ARGV[5] == '1' then
  for _, kind in ipairs(redis.call('SMEMBERS', KEYS[3])) do redis.call('DEL', ARGV[4] .. kind) end
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
end
local at = 7
for _ = 1, tonumber(ARGV[6]) do
  local hash = ARGV[4] .. ARGV[at]
  if ARGV[at + 2] == '' then
    redis.call('HDEL', hash, ARGV[at + 1])
    if redis.call('EXISTS', hash) == 0 then redis.call('SREM', KEYS[3], ARGV[at]) end
  else
    redis.call('HSET', hash, ARGV[at + 1], ARGV[at + 2])
    redis.call('SADD', KEYS[3], ARGV[at])
  end
  at = at + 3
end
while at < #ARGV do
  if ARGV[at + 1] == '' then
    redis.call('HDEL', KEYS[4], ARGV[at])
  else
    redis.call('HSET', KEYS[4], ARGV[at], ARGV[at + 1])
  end
  at = at + 2
end
rev = redis.call('INCR', KEYS[1])
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
end
return {1, rev}
"""
)

Raw = tuple[int, str, dict[str, tuple[str, int]]]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _encode_value(version: int, data: str, index: dict[str, tuple[str, int]]) -> str:
    return f"{version}\n{data}\n{orjson.dumps(index).decode()}"


def _decode_value(value: str) -> Raw:
    version, data, index = value.split("\n", 2)
    return int(version), data, {name: (part, sort) for name, (part, sort) in orjson.loads(index).items()}


class _View:
    """One request's view of one store (`RedisStore.view`): whether it has caught up, and what was fetched for it.
    Entered with ``async with``, it fetches the catch-up without blocking the event loop; the mirror applies it at
    the view's first read."""

    __slots__ = ("caught_up", "fetched", "store", "token")

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.caught_up = False
        #: (the mirror's revision the fetch started from, the catch-up answer), or None
        self.fetched: tuple[int, list[Any]] | None = None
        self.token: contextvars.Token[_View | None] | None = None

    def __enter__(self) -> None:
        self.token = _VIEW.set(self)

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            _VIEW.reset(self.token)

    async def __aenter__(self) -> None:
        self.fetched = await self.store._fetch_for_turn()
        self.token = _VIEW.set(self)  # after the wait: a request cancelled while waiting leaves nothing set

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()


_VIEW: contextvars.ContextVar[_View | None] = contextvars.ContextVar("doorcodes_redis_view", default=None)


class _Refused(Exception):
    """Raised inside the mirror's transaction so that it undoes the block; carries the catch-up answer."""

    def __init__(self, reply: list[Any]) -> None:
        self.reply = reply


class RedisStore:
    """A `Store` in a Redis database, shared by every process that opens the same URL and namespace."""

    #: several processes see the same state: the runtime syncs the clock and fans pushes out through Redis
    shared = True

    def __init__(self, url: str, *, namespace: str = "doorcodes") -> None:
        if not namespace or any(c in namespace for c in "*?[]\\"):
            raise ValueError("the namespace must be non-empty and free of glob characters")
        self.url = url
        self.namespace = namespace
        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
        )
        self._keys = {name: f"{namespace}:{name}" for name in ("rev", "log", "kinds", "seq")}
        self._prefix = f"{namespace}:k:"
        self._catch_up_script = self._redis.register_script(_CATCH_UP)
        self._commit_script = self._redis.register_script(_COMMIT)
        # Commits that replace everything (a reset, a restore) may take Redis a while: a client that waits longer.
        self._bulk = redis.Redis.from_url(url, decode_responses=True, socket_timeout=BULK_TIMEOUT_S)
        self._bulk_commit_script = self._bulk.register_script(_COMMIT)
        #: what this replica awaits from Redis, sent once per turn of the event loop (the limiter's counts too)
        self.turns = TurnPipeline(url, timeout=TIMEOUT_S)
        self._catch_up_sha = self.turns.script(_CATCH_UP)
        self._mirror = MemoryStore()
        #: the namespace's revision the mirror holds (outside a transaction)
        self._rev = 0
        #: set when the mirror may miss a commit (a commit's answer was lost): catch up whatever the view says
        self._behind = True
        #: the event loop in whose current turn the mirror caught up (see `_mark_turn`)
        self._turn_caught_up: asyncio.AbstractEventLoop | None = None
        #: the catch-up fetched for the views entered in the current turn of a loop: the loop, the revision it
        #: starts from, the answer (see `_fetch_for_turn`)
        self._turn_fetch: tuple[asyncio.AbstractEventLoop, int, asyncio.Future[list[Any]]] | None = None
        self._depth = 0
        #: what the open transaction changed: records, counters, or everything (a load or clear)
        self._dirty: set[tuple[str, str]] = set()
        self._dirty_seqs: set[str] = set()
        self._replaced = False
        self._die_at = tuple(os.environ.get(DIE_ENV, "").partition(":")[::2])
        try:
            self._reload()  # fail at start, with the URL in the message, rather than on the first request
        except StoreUnavailable as exc:
            raise ConnectionError(f"cannot reach Redis at {url}: {exc}") from exc

    @property
    def revision(self) -> int | None:
        """Changes with every change of the mirror, this process's writes and other replicas' commits it caught
        up with. None inside a `view` that has not caught up yet: nothing may be answered from what it kept."""
        view = _VIEW.get()
        if view is not None and view.store is self and not view.caught_up:
            return None
        return self._mirror.revision

    # -- reads (from the mirror, caught up first) ----------------------------------------------------------

    def get(self, kind: str, key: str) -> Record | None:
        """The record, or None."""
        self._fresh()
        return self._mirror.get(kind, key)

    def exists(self, kind: str, key: str) -> bool:
        """Whether the record is there."""
        self._fresh()
        return self._mirror.exists(kind, key)

    def versions(self, kind: str, keys: list[str]) -> list[int]:
        """Several records' versions (0 for none) at one moment, none decoded (beyond the `Store` protocol; callers
        check for it): each request polls the shared clock, faults and choices this way."""
        self._fresh()
        version = self._mirror.version
        return [version(kind, key) for key in keys]

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
        self._fresh()
        return self._mirror.page(index, partition, limit=limit, offset=offset, after=after, reverse=reverse)

    def count(self, index: str, partition: str) -> int:
        """How many entries one partition holds."""
        self._fresh()
        return self._mirror.count(index, partition)

    def lowest(self, index: str, partition: str) -> int | None:
        """The smallest sort key of one partition, or None."""
        self._fresh()
        return self._mirror.lowest(index, partition)

    def scan(self, kind: str) -> Iterator[Record]:
        """Every record of one kind in key order."""
        self._fresh()
        return self._mirror.scan(kind)

    def is_empty(self) -> bool:
        """True when the store holds no record."""
        self._fresh()
        return self._mirror.is_empty()

    def dump(self) -> dict[str, Any]:
        """The whole state as JSON-able data, in the same shape as the other backends."""
        self._fresh()
        return self._mirror.dump()

    # -- writes (to the mirror, committed to Redis by the outermost transaction) -----------------------------

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

        def put() -> int:
            version = self._mirror.put(kind, key, data, index=index, expected_version=expected_version)
            self._dirty.add((kind, key))
            return version

        return self._write(put)

    def delete(self, kind: str, key: str, *, expected_version: int | None = None) -> bool:
        """Remove a record and its index entries; False when there was none."""

        def delete() -> bool:
            deleted = self._mirror.delete(kind, key, expected_version=expected_version)
            if deleted:
                self._dirty.add((kind, key))
            return deleted

        return self._write(delete)

    def next_id(self, sequence: str, start: int = 1) -> int:
        """The next value of a named counter; the first call answers ``start``."""

        def next_id() -> int:
            value = self._mirror.next_id(sequence, start)
            self._dirty_seqs.add(sequence)
            return value

        return self._write(next_id)

    def load(self, state: dict[str, Any]) -> None:
        """Replace the whole state with what `dump` gave; on a malformed dump nothing changes."""
        records, sequences = parse_dump(state)

        def load() -> None:
            self._mirror.load_parsed(records, sequences)
            self._replaced = True

        self._write(load)

    def clear(self) -> None:
        """Remove every record and counter of this namespace (its revision goes on counting)."""

        def clear() -> None:
            self._mirror.clear()
            self._replaced = True

        self._write(clear)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes in the block are kept, or none. The outermost block commits them in one call to Redis, or
        raises `CommitConflict` (keeping none) when another replica committed since the block began. An inner
        block joins the outer one; if it raises, its own writes are undone before the exception leaves it."""
        if self._depth:
            self._depth += 1
            try:
                with self._mirror.transaction():
                    yield
            finally:
                self._depth -= 1
            return
        self._fresh()
        self._dirty.clear()
        self._dirty_seqs.clear()
        self._replaced = False
        refused: list[Any] | None = None
        self._depth = 1
        try:
            with self._mirror.transaction():
                yield
                reply = self._commit()
                if reply is not None:
                    raise _Refused(reply)
        except _Refused as exc:
            refused = exc.reply
        finally:
            self._depth = 0
        if refused is not None:
            self._apply(refused)
            raise CommitConflict(f"another replica committed to {self.namespace!r} first")

    def view(self) -> _View:
        """Reads in the block catch up once, at the first of them (see `Store.view`); ``async with`` fetches that
        catch-up without blocking the event loop, shared by the requests that enter a view in the same turn."""
        return _View(self)

    def close(self) -> None:
        """Release the connection pools; the store must not be used afterwards."""
        self._redis.close()
        self._bulk.close()

    async def aclose(self) -> None:
        """Close the connections the event loop's requests used (`TurnPipeline`), then everything else."""
        await self.turns.aclose()
        self.close()

    # -- internals -----------------------------------------------------------------------------------------

    def _write(self, write: Callable[[], T]) -> T:
        """One write: inside a transaction it joins it; alone it is a transaction of its own, run again while
        another replica commits first (up to `TIMEOUT_S`)."""
        if self._depth:
            return write()
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            try:
                with self.transaction():
                    return write()
            except CommitConflict:
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"{self.namespace!r} stayed contended for {TIMEOUT_S} s") from None

    def _fresh(self) -> None:
        """Catch up before a read, unless inside a transaction (it reads what it began with) or a view that
        has caught up already, or that may take the catch-up of this turn of the event loop (`_turn_caught_up`)."""
        if self._depth:
            return
        view = _VIEW.get()
        if view is None or view.store is not self:
            self._catch_up()
            return
        if view.caught_up and not self._behind:
            return
        if view.fetched is not None and not self._behind:
            self._apply(view.fetched[1], since=view.fetched[0])
            view.fetched = None
        elif self._behind or self._turn_caught_up is not _running_loop() or self._turn_caught_up is None:
            self._catch_up()
            self._mark_turn()
        view.caught_up = True

    def _mark_turn(self) -> None:
        """Note that the mirror caught up in this turn of the event loop, until the turn ends.

        Everything that runs in a turn of the loop was scheduled in an earlier turn, so every request whose handling
        runs now was received before this turn began, hence before this catch-up: whatever any replica had
        acknowledged when such a request was sent, this catch-up has. Under load a turn handles many requests, and
        they share one round trip. The note is cleared by a callback scheduled now; a callback scheduled later
        (a request received after the catch-up) runs after it. Outside an event loop nothing is shared."""
        loop = _running_loop()
        if loop is not None and self._turn_caught_up is not loop:
            self._turn_caught_up = loop
            loop.call_soon(self._end_turn)

    def _end_turn(self) -> None:
        self._turn_caught_up = None

    async def _fetch_for_turn(self) -> tuple[int, list[Any]] | None:
        """The catch-up answer for a view entered in this turn of the event loop, with the revision it starts from:
        one fetch per turn, for the same reason as `_mark_turn` (it is sent after every request of the turn was
        received). None when it failed: the view then catches up at its first read, which says why."""
        loop = asyncio.get_running_loop()
        if self._turn_fetch is None or self._turn_fetch[0] is not loop:
            self._turn_fetch = (loop, self._rev, asyncio.ensure_future(self._fetch(loop, self._rev)))
            loop.call_soon(self._end_fetch_turn)
        _, since, fetch = self._turn_fetch
        try:
            reply = await asyncio.shield(fetch)
        except (redis.RedisError, OSError):
            return None
        return since, reply[1:]

    def _end_fetch_turn(self) -> None:
        self._turn_fetch = None

    def _fetch(self, loop: asyncio.AbstractEventLoop, mine: int) -> Awaitable[list[Any]]:
        """The catch-up script's answer from revision ``mine``, sent in this turn's pipeline (`TurnPipeline`): one
        call, which answers the revision alone when nothing changed, so a replica behind others' commits waits
        one round trip, not a revision read and then the script."""
        keys = self._keys
        return self.turns.run_script(self._catch_up_sha, [keys["rev"], keys["log"]], [mine])

    def _call(self, command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One call to Redis; out of reach or too slow, `StoreUnavailable`."""
        try:
            return command(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._behind = True
            raise StoreUnavailable(f"Redis at {self.url}: {exc}") from exc

    def _catch_up(self) -> None:
        keys = self._keys
        # A plain GET first: it costs Redis half of what a script call does, and mostly nothing has changed.
        if int(self._call(self._redis.get, keys["rev"]) or 0) == self._rev:
            self._behind = False
            return
        self._apply(self._call(self._catch_up_script, keys=[keys["rev"], keys["log"]], args=[self._rev])[1:])

    def _apply(self, reply: list[Any], *, since: int | None = None) -> None:
        """Bring the mirror to what a catch-up from revision ``since`` (the mirror's own by default) answered:
        ``[revision, entries...]`` (the entries after ``since``) or ``[revision, 'reload']``. The mirror may have
        moved on since the fetch began (its own commits): the entries it holds already are skipped."""
        rev = int(reply[0])
        if rev <= self._rev:
            self._behind = False if since is None else self._behind
            return
        if len(reply) == 2 and reply[1] == "reload":
            self._reload()
            return
        mirror = self._mirror
        for entry in reply[1 + self._rev - (self._rev if since is None else since) :]:
            records, sequences = orjson.loads(entry)
            for kind, key, value in records:
                mirror.set_raw(kind, key, None if value is None else _decode_value(value))
            for name, value in sequences:
                mirror.set_sequence(name, value)
        self._rev = rev
        self._behind = False

    def _reload(self) -> None:
        """Read the whole state again, in short calls that other replicas' commits may fall between: then the log
        entries from the revision read first to the one read last are applied over what was read. Each entry
        sets whole records and counters, so applying it again where a read already saw it changes nothing, and
        the mirror ends exactly at the last revision."""
        keys = self._keys
        for _ in range(5):
            first = int(self._call(self._redis.get, keys["rev"]) or 0)
            records: list[DumpedRecord] = []
            for kind in sorted(self._call(self._redis.smembers, keys["kinds"])):
                values: dict[str, str] = {}
                cursor = 0
                while True:
                    cursor, chunk = self._call(self._redis.hscan, self._prefix + kind, cursor, count=RELOAD_CHUNK)
                    values.update(chunk)
                    if not cursor:
                        break
                records += [(kind, key, *_decode_value(value)) for key, value in values.items()]
            flat = self._call(self._redis.hgetall, keys["seq"])
            since = self._call(self._catch_up_script, keys=[keys["rev"], keys["log"]], args=[first])[1:]
            if since[1:2] == ["reload"]:
                continue  # everything was replaced while it was read: read again
            self._mirror.load_parsed(records, {name: int(value) for name, value in flat.items()})
            self._rev = first
            self._apply(since)
            return
        raise StoreUnavailable(f"{self.namespace!r} kept being replaced while this replica read it")

    def _commit(self) -> list[Any] | None:
        """Send the open transaction's changes; None when Redis kept them, else the catch-up answer."""
        if not (self._dirty or self._dirty_seqs or self._replaced):
            return None
        mirror = self._mirror
        if self._replaced:
            records: list[tuple[str, str, str | None]] = [
                (kind, key, _encode_value(*raw)) for kind, key, raw in mirror.raw_all()
            ]
            sequences: list[tuple[str, int | None]] = list(mirror.sequences().items())
            entry = ""  # no log entry: the others reload
        else:
            records = []
            for kind, key in self._dirty:
                raw = mirror.raw(kind, key)
                records.append((kind, key, None if raw is None else _encode_value(*raw)))
            sequences = [(name, mirror.sequence(name)) for name in self._dirty_seqs]
            entry = orjson.dumps([records, sequences]).decode()
        args: list[Any] = [self._rev, entry, LOG_LENGTH, self._prefix, int(self._replaced), len(records)]
        for kind, key, value in records:
            args += (kind, key, "" if value is None else value)
        for name, number in sequences:
            args += (name, "" if number is None else number)
        keys = [self._keys["rev"], self._keys["log"], self._keys["kinds"], self._keys["seq"]]
        dying = self._die_at[0] if any(kind == self._die_at[1] for kind, _, _ in records) else ""
        if dying in ("before", "half"):
            self._die(dying, keys, args)
        script = self._bulk_commit_script if self._replaced else self._commit_script
        reply = self._call(script, keys=keys, args=args)
        if dying == "after":
            self._die(dying, keys, args)
        if reply[0] == 1:
            self._rev = int(reply[1])
            return None
        lost: list[Any] = reply[1:]
        return lost

    def _die(self, point: str, keys: list[str], args: list[Any]) -> None:
        """The test hook of the module docstring: SIGKILL this process at ``point`` of a commit."""
        if point == "half":
            # Half of the command reaches Redis, then the connection dies with the process.
            connection = self._redis.connection_pool.get_connection()
            packed = b"".join(connection.pack_command("EVAL", _COMMIT, len(keys), *keys, *args))  # type: ignore[no-untyped-call]
            connection.send_packed_command([packed[: len(packed) // 2]])  # type: ignore[no-untyped-call]
        os.kill(os.getpid(), signal.SIGKILL)
