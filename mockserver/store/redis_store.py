"""The Redis store: one building shared by several mock replicas.

Each replica keeps the whole state in its own memory (a `MemoryStore`, the *mirror*) and reads from it; Redis holds
the state the replicas agree on, with a revision and a log of the last commits. Layout, every key under
``{namespace}:``:

- ``k:{kind}`` — a hash, record key -> ``"{version}\\n{data JSON}\\n{index JSON}"``;
- ``kinds`` — the set of kinds that hold records; ``seq`` — a hash of counters;
- ``rev`` — how many commits the namespace has seen; ``log`` — what each of the last commits changed;
  ``touched`` — beside each log entry, what its commit touched: records, counters, and index entries with their
  partition and sort key (those it added and those it removed).

Catching up is one script call: it answers the revision and, when the mirror is behind, the log entries it missed
(or tells it to reload everything, when the log no longer reaches back that far). The mirror catches up before a
read outside a transaction, at the start of a transaction, or once per `view` (one request).

A transaction writes to the mirror (which keeps the undo log) and notes what it read and what it changed; the
outermost block then sends all of it in one script call. Redis runs a script whole or not at all, so a replica that
dies anywhere in a commit leaves all of it or none, and there is no lock for a dead replica to hold. The script
applies the writes when the revision is still the one the mirror was at, or when none of the commits since touched
what the block read: a record it read or wrote (absent ones included), a counter it drew from, a partition it paged
or counted, or an entry sorting at or below the lowest key it read of a partition (`lowest`: the building looks
for what is due). Its answer then carries those commits too, which the mirror applies after its own (they touched
nothing of it). Otherwise the script answers what changed instead: the mirror undoes the block, catches up, and the
block is refused (`CommitConflict`) to be run again. A block that scanned a whole kind, or dumped or replaced
everything, needs the revision unchanged.

Two replicas creating codes at once so commit one after the other without a refusal: nothing either reads is
touched by the other, and ids come from `unique_id`, whose counter a replica draws from in blocks (`ID_BLOCK`)
outside the commits.

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
from .redis_turns import DirectScript, TurnPipeline

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

# KEYS: rev, log, kinds, seq, touched. ARGV: [1] the caller's revision (the base), [2] the log entry ('' for a
# replacement of everything), [3] the log's length, [4] the prefix of the kinds' hashes, [5] '1' to replace
# everything, [6] '1' when the block read everything (only the base revision will do), [7] what the commit touches
# (JSON: [[record and counter items], [[partition item, sort key], ...]]), then the number of items read r and r
# items, then the number of lowest reads l and l pairs (partition item, the lowest sort key read, '' for none), then
# the number of records n and n times (kind, key, value or '' to delete), then (counter, value or '') pairs.
# Refused ({0, ...} as `since`) when a commit since the base touched what the block read; accepted, {1, revision}
# and the log entries between the base and this commit.
_COMMIT = (
    _SINCE
    + """
local rev = tonumber(redis.call('GET', KEYS[1]) or '0')
local base = tonumber(ARGV[1])
local at = 8
local reads = {}
for i = 1, tonumber(ARGV[at]) do reads[ARGV[at + i]] = true end
at = at + tonumber(ARGV[at]) + 1
local lowest = {}
local lows = tonumber(ARGV[at])
for i = 0, lows - 1 do lowest[ARGV[at + 1 + 2 * i]] = ARGV[at + 2 + 2 * i] end
at = at + 2 * lows + 1
if rev ~= base then
  local behind = rev - base
  if ARGV[5] == '1' or ARGV[6] == '1' or behind < 0 or behind >= redis.call('LLEN', KEYS[5]) then
    return since(0, rev, base)
  end
  for _, touched in ipairs(redis.call('LRANGE', KEYS[5], -behind, -1)) do
    if touched == '*' then return since(0, rev, base) end
    local other = cjson.decode(touched)
    for _, item in ipairs(other[1]) do
      if reads[item] then return since(0, rev, base) end
    end
    for _, entry in ipairs(other[2]) do
      local low = lowest[entry[1]]
      if reads[entry[1]] or (low ~= nil and (low == '' or entry[2] <= tonumber(low))) then
        return since(0, rev, base)
      end
    end
  end
end
if ARGV[5] == '1' then
  for _, kind in ipairs(redis.call('SMEMBERS', KEYS[3])) do redis.call('DEL', ARGV[4] .. kind) end
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
end
local records = tonumber(ARGV[at])
at = at + 1
for _ = 1, records do
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
  redis.call('RPUSH', KEYS[5], ARGV[7])
  redis.call('LTRIM', KEYS[5], -tonumber(ARGV[3]), -1)
end
if rev == base + 1 then return {1, rev} end
local out = redis.call('LRANGE', KEYS[2], base - rev, -2)
table.insert(out, 1, rev)
table.insert(out, 1, 1)
return out
"""
)

#: ids a replica draws from a shared counter at a time (`RedisStore.unique_id`): one call to Redis per this many
ID_BLOCK = 64

# KEYS: seq. ARGV: the counter, its first value, how many values to take. Answers the last value taken.
_RESERVE = """
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or (tonumber(ARGV[2]) - 1)) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], last)
return last
"""

Raw = tuple[int, str, dict[str, tuple[str, int]]]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _record_item(kind: str, key: str) -> str:
    """A record as the commit script names what a block read and what a commit touched (kinds hold no NUL)."""
    return "r" + kind + "\0" + key


def _part_item(index: str, partition: str) -> str:
    """A partition of an index, named as `_record_item` names a record (index names hold no NUL)."""
    return "p" + index + "\0" + partition


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

    @property
    def fetched_ahead(self) -> bool:
        """Whether the catch-up was fetched on entering (``async with``): the first read applies it without a call
        to Redis. False when the fetch failed (the first read then catches up itself, blocking, and says why)."""
        return self.fetched is not None

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
        self._keys = {name: f"{namespace}:{name}" for name in ("rev", "log", "kinds", "seq", "touched")}
        self._prefix = f"{namespace}:k:"
        self._catch_up_script = self._redis.register_script(_CATCH_UP)
        self._commit_script = DirectScript(self._redis, _COMMIT)
        self._reserve_script = DirectScript(self._redis, _RESERVE)
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
        #: what the open transaction read: items as the commit script names them (`_record_item`, `_part_item`,
        #: "s" + a counter), the lowest sort key read of each partition (None: it was empty), and whether it read
        #: everything (a scan, a dump)
        self._reads: set[str] = set()
        self._lowest: dict[str, int | None] = {}
        self._read_all = False
        #: the index entries each record the open transaction wrote had when it began
        self._before: dict[tuple[str, str], dict[str, tuple[str, int]]] = {}
        #: other replicas' log entries an accepted commit answered with, applied once the block has closed
        self._missed: list[str] = []
        #: `unique_id`'s blocks: counter -> [next value, last value]; and each draw of the open transaction (the
        #: block and its next value before), to undo it
        self._blocks: dict[str, list[int]] = {}
        #: a block taken but not drawn from yet (a block that failed drew it, then gave back the one before)
        self._spare: dict[str, list[int]] = {}
        self._drawn: list[tuple[str, list[int], int]] = []
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
        if self._depth:
            self._reads.add(_record_item(kind, key))
        else:
            self._fresh()
        return self._mirror.get(kind, key)

    def exists(self, kind: str, key: str) -> bool:
        """Whether the record is there."""
        if self._depth:
            self._reads.add(_record_item(kind, key))
        else:
            self._fresh()
        return self._mirror.exists(kind, key)

    def versions(self, kind: str, keys: list[str]) -> list[int]:
        """Several records' versions (0 for none) at one moment, none decoded (beyond the `Store` protocol; callers
        check for it): each request polls the shared clock, faults and choices this way."""
        if self._depth:
            self._reads.update(_record_item(kind, key) for key in keys)
        else:
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
        if self._depth:
            self._reads.add(_part_item(index, partition))
        else:
            self._fresh()
        return self._mirror.page(index, partition, limit=limit, offset=offset, after=after, reverse=reverse)

    def count(self, index: str, partition: str) -> int:
        """How many entries one partition holds."""
        if self._depth:
            self._reads.add(_part_item(index, partition))
        else:
            self._fresh()
        return self._mirror.count(index, partition)

    def lowest(self, index: str, partition: str) -> int | None:
        """The smallest sort key of one partition, or None."""
        if not self._depth:
            self._fresh()
            return self._mirror.lowest(index, partition)
        found = self._mirror.lowest(index, partition)
        item = _part_item(index, partition)
        if item not in self._lowest:
            self._lowest[item] = found
        elif (known := self._lowest[item]) is not None and (found is None or found > known):
            self._lowest[item] = found  # keep the laxest read: what holds for it holds for the others
        return found

    def scan(self, kind: str) -> Iterator[Record]:
        """Every record of one kind in key order."""
        if self._depth:
            self._read_all = True
        else:
            self._fresh()
        return self._mirror.scan(kind)

    def is_empty(self) -> bool:
        """True when the store holds no record."""
        if self._depth:
            self._read_all = True
        else:
            self._fresh()
        return self._mirror.is_empty()

    def dump(self) -> dict[str, Any]:
        """The whole state as JSON-able data, in the same shape as the other backends. Counters are read from
        Redis too: other replicas' `unique_id` blocks move them without a commit."""
        if self._depth:
            self._read_all = True
        else:
            self._fresh()
        dumped = self._mirror.dump()
        shared = self._call(self._redis.hgetall, self._keys["seq"])
        sequences = dumped["sequences"]
        for name, value in shared.items():
            sequences[name] = max(int(value), sequences.get(name, 0))
        dumped["sequences"] = dict(sorted(sequences.items()))
        return dumped

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
            self._writing(kind, key)
            version = self._mirror.put(kind, key, data, index=index, expected_version=expected_version)
            self._dirty.add((kind, key))
            return version

        return self._write(put)

    def delete(self, kind: str, key: str, *, expected_version: int | None = None) -> bool:
        """Remove a record and its index entries; False when there was none."""

        def delete() -> bool:
            self._writing(kind, key)
            deleted = self._mirror.delete(kind, key, expected_version=expected_version)
            if deleted:
                self._dirty.add((kind, key))
            return deleted

        return self._write(delete)

    def next_id(self, sequence: str, start: int = 1) -> int:
        """The next value of a named counter; the first call answers ``start``."""

        def next_id() -> int:
            self._reads.add("s" + sequence)
            value = self._mirror.next_id(sequence, start)
            self._dirty_seqs.add(sequence)
            return value

        return self._write(next_id)

    def unique_id(self, sequence: str, start: int = 1) -> int:
        """A value of a counter no other call answers (see `Store.unique_id`): the next of this replica's block,
        which it draws from Redis `ID_BLOCK` values at a time, outside any commit. Inside a transaction the draw
        is undone with it, so a block run again draws the same value. A transaction that replaces everything
        draws from the state it is writing (the counter starts again where that state has it)."""
        if self._replaced and self._depth:
            return self.next_id(sequence, start)
        block = self._blocks.get(sequence)
        if (block is None or block[0] > block[1]) and sequence in self._spare:
            block = self._blocks[sequence] = self._spare.pop(sequence)
        if block is None or block[0] > block[1]:
            last = int(self._call(self._reserve_script, keys=[self._keys["seq"]], args=[sequence, start, ID_BLOCK]))
            # The mirror's counter follows, so that a dump of this replica's state holds what it handed out.
            if (self._mirror.sequence(sequence) or 0) < last:
                self._mirror.set_sequence(sequence, last)
            block = self._blocks[sequence] = [last - ID_BLOCK + 1, last]
        if self._depth:
            self._drawn.append((sequence, block, block[0]))
        value = block[0]
        block[0] += 1
        return value

    def load(self, state: dict[str, Any]) -> None:
        """Replace the whole state with what `dump` gave; on a malformed dump nothing changes."""
        records, sequences = parse_dump(state)

        def load() -> None:
            self._mirror.load_parsed(records, sequences)
            self._replaced = True
            self._forget_blocks()  # their values may be taken in the state loaded

        self._write(load)

    def clear(self) -> None:
        """Remove every record and counter of this namespace (its revision goes on counting)."""

        def clear() -> None:
            self._mirror.clear()
            self._replaced = True
            self._forget_blocks()  # the counters start again

        self._write(clear)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes in the block are kept, or none. The outermost block commits them in one call to Redis, or
        raises `CommitConflict` (keeping none) when another replica committed since the block began. An inner
        block joins the outer one; if it raises, its own writes are undone before the exception leaves it."""
        if self._depth:
            self._depth += 1
            drawn = len(self._drawn)
            try:
                with self._mirror.transaction():
                    yield
            except BaseException:
                self._undraw(drawn)
                raise
            finally:
                self._depth -= 1
            return
        self._fresh()
        self._dirty.clear()
        self._dirty_seqs.clear()
        self._replaced = False
        self._reads.clear()
        self._lowest.clear()
        self._read_all = False
        self._before.clear()
        self._missed = []
        self._drawn.clear()
        refused: list[Any] | None = None
        self._depth = 1
        try:
            with self._mirror.transaction():
                yield
                reply = self._commit()
                if reply is not None:
                    raise _Refused(reply)
        except BaseException as exc:
            self._undraw(0)
            if not isinstance(exc, _Refused):
                raise
            refused = exc.reply
        finally:
            self._depth = 0
            self._drawn.clear()
        if refused is not None:
            self._apply(refused)
            raise CommitConflict(f"another replica committed to {self.namespace!r} first")
        if self._missed:
            # Other replicas' commits that fell between the block's base and its own: they touched nothing it read
            # or wrote, so applying them after it gives the state Redis holds.
            self._apply_entries(self._missed)
            self._missed = []

    def view(self) -> _View:
        """Reads in the block catch up once, at the first of them (see `Store.view`); ``async with`` fetches that
        catch-up without blocking the event loop, shared by the requests that enter a view in the same turn."""
        return _View(self)

    def close(self) -> None:
        """Release the connection pools; the store must not be used afterwards."""
        self._commit_script.close()
        self._reserve_script.close()
        self._redis.close()
        self._bulk.close()

    async def aclose(self) -> None:
        """Close the connections the event loop's requests used (`TurnPipeline`), then everything else."""
        await self.turns.aclose()
        self.close()

    # -- internals -----------------------------------------------------------------------------------------

    def _writing(self, kind: str, key: str) -> None:
        """Note a record the open transaction writes: it counts as read (a write depends on the version it
        replaces), and the index entries it had at the start are kept, for the commit to tell the others which
        entries it removed."""
        if (kind, key) not in self._before:
            self._reads.add(_record_item(kind, key))
            raw = self._mirror.raw(kind, key)
            self._before[(kind, key)] = {} if raw is None else raw[2]

    def _forget_blocks(self) -> None:
        """Drop `unique_id`'s blocks: the counters they were drawn from were replaced."""
        self._blocks.clear()
        self._spare.clear()

    def _undraw(self, keep: int) -> None:
        """Undo the `unique_id` draws of a block that failed, back to the first ``keep``."""
        while len(self._drawn) > keep:
            sequence, block, value = self._drawn.pop()
            block[0] = value
            newer = self._blocks.get(sequence)
            if newer is not block and block[0] <= block[1]:
                # A block drawn from before a newer one: its values come first again, then the newer one's.
                self._blocks[sequence] = block
                if newer is not None:
                    self._spare[sequence] = newer

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
        self._apply_entries(reply[1 + self._rev - (self._rev if since is None else since) :])
        self._rev = rev
        self._behind = False

    def _apply_entries(self, entries: list[str]) -> None:
        """Apply log entries to the mirror, in order (each sets whole records and counters)."""
        mirror = self._mirror
        for entry in entries:
            records, sequences = orjson.loads(entry)
            for kind, key, value in records:
                mirror.set_raw(kind, key, None if value is None else _decode_value(value))
            for name, value in sequences:
                mirror.set_sequence(name, value)

    def _reload(self) -> None:
        """Read the whole state again, in short calls that other replicas' commits may fall between: then the log
        entries from the revision read first to the one read last are applied over what was read. Each entry
        sets whole records and counters, so applying it again where a read already saw it changes nothing, and
        the mirror ends exactly at the last revision."""
        self._forget_blocks()  # drawn from counters another replica may have replaced
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
            entry = touched = ""  # no log entry: the others reload
        else:
            records = []
            items: list[str] = []
            entries: list[tuple[str, int]] = []
            for kind, key in self._dirty:
                raw = mirror.raw(kind, key)
                records.append((kind, key, None if raw is None else _encode_value(*raw)))
                items.append(_record_item(kind, key))
                before, after = self._before.get((kind, key), {}), {} if raw is None else raw[2]
                # The index entries the record lost and gained: what other blocks' page, count and lowest saw.
                entries += [
                    (_part_item(name, part), sort)
                    for name, (part, sort) in before.items()
                    if after.get(name) != (part, sort)
                ]
                entries += [
                    (_part_item(name, part), sort)
                    for name, (part, sort) in after.items()
                    if before.get(name) != (part, sort)
                ]
            sequences = [(name, mirror.sequence(name)) for name in self._dirty_seqs]
            items += ["s" + name for name in self._dirty_seqs]
            entry = orjson.dumps([records, sequences]).decode()
            try:
                touched = orjson.dumps([items, entries]).decode()
            except orjson.JSONEncodeError:  # a sort key past 64 bits: every block that began before this conflicts
                touched = "*"
        args: list[Any] = [self._rev, entry, LOG_LENGTH, self._prefix, int(self._replaced), int(self._read_all)]
        args += (touched, len(self._reads), *self._reads, len(self._lowest))
        for item, sort in self._lowest.items():
            args += (item, "" if sort is None else sort)
        args.append(len(records))
        for kind, key, value in records:
            args += (kind, key, "" if value is None else value)
        for name, number in sequences:
            args += (name, "" if number is None else number)
        keys = [self._keys[name] for name in ("rev", "log", "kinds", "seq", "touched")]
        dying = self._die_at[0] if any(kind == self._die_at[1] for kind, _, _ in records) else ""
        if dying in ("before", "half"):
            self._die(dying, keys, args)
        script = self._bulk_commit_script if self._replaced else self._commit_script
        reply = self._call(script, keys=keys, args=args)
        if dying == "after":
            self._die(dying, keys, args)
        if reply[0] == 1:
            self._rev = int(reply[1])
            self._missed = reply[2:]
            if self._replaced:
                self._forget_blocks()
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
