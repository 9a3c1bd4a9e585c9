"""The in-memory store: dicts for records, one sorted list per index partition.

Record data is kept JSON-encoded: that copies it (so no caller can reach into the store through a dict it
passed in or got back), checks it is JSON-able exactly as the SQLite backend would, and measured faster than
``copy.deepcopy`` for small records (with orjson, well under a microsecond each way for ten fields, against 7 us
for each deep copy).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import operator
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import orjson
from sortedcontainers import SortedList

from .base import IndexEntries, Page, Record, VersionConflict

#: sort keys must fit a signed 64-bit integer, so every backend (SQLite, Redis scores aside) can hold them
_SORT_MIN = -(2**63)
_SORT_MAX = 2**63 - 1

#: the layout `dump` writes and `load` accepts
DUMP_FORMAT = 1

#: (kind, key, version, data as JSON text, index entries)
DumpedRecord = tuple[str, str, int, str, dict[str, tuple[str, int]]]

_encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
#: orjson hands these to its (absent) default function, that is: it refuses them, and the json module decides
_ORJSON_REFUSE = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


def encode_data(data: dict[str, Any]) -> str:
    """The JSON text of a record's data; raises TypeError/ValueError when it is not JSON-able.

    orjson writes it about ten times faster than the json module. Where the two would differ, the json module
    decides: orjson refuses lone surrogates, integers past 64 bits, non-str keys and other objects, and writes NaN
    and infinities as null, so text holding a null is written again by the json module (which refuses those).
    Only UUID and Enum values, which orjson writes as their JSON form, are accepted where the json module refused
    them. Text with lone surrogates is refused: the json module would write it, but it could never be read."""
    if not isinstance(data, dict):
        raise TypeError(f"record data must be a dict, not {type(data).__name__}")
    try:
        text = orjson.dumps(data, option=_ORJSON_REFUSE)
    except TypeError:
        written = _encode_json(data)
        try:
            decode_data(written)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"record data holds text that is not Unicode: {exc}") from exc
        return written
    if b"null" in text:
        return _encode_json(data)
    return text.decode()


def decode_data(text: str) -> dict[str, Any]:
    """A fresh dict from `encode_data`'s text (orjson reads it several times faster than the json module)."""
    data: dict[str, Any] = orjson.loads(text)
    return data


def check_name(value: object, what: str) -> str:
    """Kinds, keys, index names and partitions are strings (they are compared and sorted together)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


def normalise_index(index: IndexEntries | None) -> dict[str, tuple[str, int]]:
    """Validated index entries as a new dict of ``name -> (partition, int sort)``."""
    if not index:
        return {}
    out: dict[str, tuple[str, int]] = {}
    for name, entry in index.items():
        part, sort = entry
        # operator.index accepts ints (and numpy ints) but rejects floats and strings, which would not sort
        # against ints in a partition. (The type tests only skip the calls for the usual plain int and str.)
        if type(sort) is not int:
            sort = int(operator.index(sort))
        if not _SORT_MIN <= sort <= _SORT_MAX:
            raise ValueError(f"sort key {sort} of index {name!r} does not fit 64 bits")
        if type(name) is not str:
            check_name(name, "index name")
        if type(part) is not str:
            check_name(part, "partition")
        out[name] = (part, sort)
    return out


def checked_put(
    kind: str, key: str, data: dict[str, Any], index: IndexEntries | None
) -> tuple[str, dict[str, tuple[str, int]]]:
    """A put's data as JSON text and its index entries, validated before anything is touched, so that a bad call
    changes nothing in any backend."""
    check_name(kind, "kind")
    check_name(key, "key")
    return encode_data(data), normalise_index(index)


def check_page_args(limit: int, offset: int) -> None:
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")


def parse_dump(state: Mapping[str, Any]) -> tuple[list[DumpedRecord], dict[str, int]]:
    """Validated ``(records, sequences)`` from `dump` output, data re-encoded as JSON text; ValueError for
    anything else (a dump comes from outside, through the control API)."""
    try:
        return _parse_dump(state)
    except (TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"malformed dump: {exc!r}") from None


def _parse_dump(state: Mapping[str, Any]) -> tuple[list[DumpedRecord], dict[str, int]]:
    fmt = state.get("format", DUMP_FORMAT)
    if fmt != DUMP_FORMAT:
        raise ValueError(f"unknown dump format {fmt!r}")
    records: list[DumpedRecord] = []
    seen: set[tuple[str, str]] = set()
    for item in state.get("records", []):
        kind = check_name(item["kind"], "kind")
        key = check_name(item["key"], "key")
        if (kind, key) in seen:
            raise ValueError(f"duplicate record {kind}/{key} in dump")
        seen.add((kind, key))
        version = int(operator.index(item["version"]))
        if version < 1:
            raise ValueError(f"record {kind}/{key} has version {version}")
        records.append((kind, key, version, encode_data(item["data"]), normalise_index(item.get("index"))))
    sequences = {
        check_name(name, "sequence"): int(operator.index(value)) for name, value in state.get("sequences", {}).items()
    }
    return records, sequences


def dump_record(kind: str, key: str, version: int, data: str, index: Mapping[str, tuple[str, int]]) -> dict[str, Any]:
    return {
        "kind": kind,
        "key": key,
        "version": version,
        "data": decode_data(data),
        "index": {name: [part, sort] for name, (part, sort) in index.items()},
    }


class undo_scope:
    """The undo-log bookkeeping of a backend that writes through and rolls back by itself (memory, Redis): the
    outermost block opens the log, and a block that raises undoes what it logged before the exception leaves.
    A class rather than a generator function: every building operation enters one, and a class enters and
    leaves with fewer calls."""

    __slots__ = ("mark", "outer", "store")

    def __init__(self, store: Any) -> None:
        self.store = store

    def __enter__(self) -> None:
        store = self.store
        self.outer = store._undo is None
        if self.outer:
            store._undo = []
        self.mark = len(store._undo)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        try:
            if exc_type is not None:
                self.store._rollback_to(self.mark)
        finally:
            if self.outer:
                self.store._undo = None


#: A stored record: ``(version, data as JSON text, name, (partition, sort), name, (partition, sort), ...)``, its
#: index entries laid out after the data. Plain tuples of ints and strs on purpose: the cyclic garbage collector
#: stops tracking such tuples at the first collections that see them, so a stored record never reaches the old
#: generation. A NamedTuple or a dict stays tracked, and each full collection walked every record written since the
#: one before: 10 to 25 ms with codes created under load, which every open connection waited for.
_Rec = tuple[Any, ...]


class _Records(dict[str, _Rec]):
    """One kind's records by key. A dict subclass on purpose: the collector stops tracking an exact dict whose
    values it no longer tracks, and the next record put into it makes it young again, so every later collection
    would walk all its entries. A subclass stays tracked, and is frozen with the rest of the building (see
    `mockserver.collector`)."""

    __slots__ = ()


#: what a kind without records reads as (never written to)
_NO_RECORDS = _Records()


def _rec(version: int, data: str, index: Mapping[str, tuple[str, int]]) -> _Rec:
    if not index:
        return (version, data)
    return (version, data, *itertools.chain.from_iterable(index.items()))


def _index(rec: _Rec) -> dict[str, tuple[str, int]]:
    """A new dict of the record's index entries (a plain loop: faster than slicing and zipping for a few)."""
    index = {}
    for at in range(2, len(rec), 2):
        index[rec[at]] = rec[at + 1]
    return index


class MemoryStore:
    """A `Store` held in this process's memory; gone when the process ends."""

    def __init__(self) -> None:
        self._kinds: dict[str, _Records] = {}
        #: (index, partition) -> SortedList of (sort, key, kind); kind only breaks ties between kinds
        self._parts: dict[tuple[str, str], SortedList] = {}
        self._seqs: dict[str, int] = {}
        #: undo log of the open transaction, None outside one
        self._undo: list[tuple[Any, ...]] | None = None
        self._revision = 0

    @property
    def revision(self) -> int:
        """Grows on every change of content (writes, rollbacks, load, clear)."""
        return self._revision

    # -- reads ---------------------------------------------------------------------------------------------

    def get(self, kind: str, key: str) -> Record | None:
        """The record, or None."""
        rec = self._kinds.get(kind, _NO_RECORDS).get(key)
        return None if rec is None else _record(kind, key, rec)

    def exists(self, kind: str, key: str) -> bool:
        """Whether the record is there, without decoding it."""
        return key in self._kinds.get(kind, ())

    def version(self, kind: str, key: str) -> int:
        """The record's version (0 when there is none), without decoding it."""
        rec = self._kinds.get(kind, _NO_RECORDS).get(key)
        return 0 if rec is None else rec[0]

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
        entries = self._parts.get((index, partition))
        if entries is None:
            return Page([], 0)
        total = len(entries)
        if reverse:
            # (after,) sorts before every (after, key, kind), so this is the first position with sort >= after
            stop = total if after is None else entries.bisect_left((after,))
            stop -= offset
            start = max(stop - limit, 0)
            window = entries.islice(start, stop, reverse=True) if stop > start else ()
        else:
            start = 0 if after is None else entries.bisect_left((after + 1,))
            start += offset
            window = entries.islice(start, start + limit) if limit else ()
        return Page([_record(kind, key, self._kinds[kind][key]) for _, key, kind in window], total)

    def count(self, index: str, partition: str) -> int:
        """How many entries one partition holds (SortedList keeps its length)."""
        entries = self._parts.get((index, partition))
        return 0 if entries is None else len(entries)

    def lowest(self, index: str, partition: str) -> int | None:
        """The smallest sort key of one partition, or None."""
        entries = self._parts.get((index, partition))
        return entries[0][0] if entries else None

    def scan(self, kind: str) -> Iterator[Record]:
        """Every record of one kind in key order; a snapshot, so writing while iterating is safe."""
        records = self._kinds.get(kind, _NO_RECORDS)
        return iter([_record(kind, key, records[key]) for key in sorted(records)])

    def is_empty(self) -> bool:
        """True when the store holds no record."""
        return not self._kinds

    def dump(self) -> dict[str, Any]:
        """The whole state as JSON-able data (index entries ride along with their records)."""
        return {
            "format": DUMP_FORMAT,
            "records": [
                dump_record(kind, key, rec[0], rec[1], _index(rec))
                for kind in sorted(self._kinds)
                for key, rec in sorted(self._kinds[kind].items())
            ],
            "sequences": dict(sorted(self._seqs.items())),
        }

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
        old = self._kinds.get(kind, _NO_RECORDS).get(key)
        actual = 0 if old is None else old[0]
        if expected_version is not None and expected_version != actual:
            raise VersionConflict(kind, key, expected_version, actual)
        new = _rec(actual + 1, encoded, entries)
        if self._undo is not None:
            self._undo.append(("rec", kind, key, old))
        self._replace(kind, key, old, new, entries)
        return actual + 1

    def delete(self, kind: str, key: str, *, expected_version: int | None = None) -> bool:
        """Remove a record and its index entries; False when there was none."""
        old = self._kinds.get(kind, _NO_RECORDS).get(key)
        actual = 0 if old is None else old[0]
        if expected_version is not None and expected_version != actual:
            raise VersionConflict(kind, key, expected_version, actual)
        if old is None:
            return False
        if self._undo is not None:
            self._undo.append(("rec", kind, key, old))
        self._replace(kind, key, old, None, {})
        return True

    def next_id(self, sequence: str, start: int = 1) -> int:
        """The next value of a named counter; the first call answers ``start``."""
        current = self._seqs.get(sequence)
        value = start if current is None else current + 1
        if self._undo is not None:
            self._undo.append(("seq", sequence, current))
        self._seqs[sequence] = value
        self._revision += 1
        return value

    def unique_id(self, sequence: str, start: int = 1) -> int:
        """A value no other call answers: `next_id`'s (only this process draws from it)."""
        return self.next_id(sequence, start)

    def transaction(self) -> AbstractContextManager[None]:
        """All writes in the block are kept, or none. An inner block joins the outer one; if it raises, its
        own writes are undone before the exception leaves it (so a caught inner failure leaves nothing half
        done)."""
        return undo_scope(self)

    def view(self) -> contextlib.nullcontext[None]:
        """Nothing to catch up with: only this process writes."""
        return contextlib.nullcontext()

    def load(self, state: dict[str, Any]) -> None:
        """Replace the whole state with what `dump` gave; on a malformed dump nothing changes."""
        self.load_parsed(*parse_dump(state))

    def load_parsed(self, records: list[DumpedRecord], sequences: dict[str, int]) -> None:
        """`load` of records already checked and encoded (a backend that mirrors a shared state reloads so)."""
        kinds: dict[str, _Records] = {}
        lists: dict[tuple[str, str], list[tuple[int, str, str]]] = {}
        for kind, key, version, data, index in records:
            if kind not in kinds:
                kinds[kind] = _Records()
            kinds[kind][key] = _rec(version, data, index)
            for name, (part, sort) in index.items():
                lists.setdefault((name, part), []).append((sort, key, kind))
        self._swap(kinds, {p: SortedList(entries) for p, entries in lists.items()}, sequences)

    def clear(self) -> None:
        """Remove every record, index entry and counter."""
        self._swap({}, {}, {})

    def close(self) -> None:
        """Drop the state; the store must not be used afterwards."""
        self._kinds, self._parts, self._seqs, self._undo = {}, {}, {}, None

    # -- raw records, for a backend that keeps this store as its mirror of a shared state (`redis_store`) -----

    def raw(self, kind: str, key: str) -> tuple[int, str, dict[str, tuple[str, int]]] | None:
        """A record as ``(version, data as JSON text, index entries)``, or None; nothing decoded."""
        rec = self._kinds.get(kind, _NO_RECORDS).get(key)
        return None if rec is None else (rec[0], rec[1], _index(rec))

    def set_raw(self, kind: str, key: str, raw: tuple[int, str, dict[str, tuple[str, int]]] | None) -> None:
        """Put a record exactly as given (None: remove it), as another process wrote it; outside transactions."""
        old = self._kinds.get(kind, _NO_RECORDS).get(key)
        if raw is None:
            if old is not None:
                self._replace(kind, key, old, None, {})
            return
        version, data, index = raw
        self._replace(kind, key, old, _rec(version, data, index), index)

    def sequence(self, name: str) -> int | None:
        return self._seqs.get(name)

    def set_sequence(self, name: str, value: int | None) -> None:
        """Set a counter exactly as given (None: remove it), as another process did; outside transactions."""
        if value is None:
            self._seqs.pop(name, None)
        else:
            self._seqs[name] = value
        self._revision += 1

    def raw_all(self) -> Iterator[tuple[str, str, tuple[int, str, dict[str, tuple[str, int]]]]]:
        """Every record as ``(kind, key, raw)``, then nothing else (counters: `sequences`)."""
        for kind, records in self._kinds.items():
            for key, rec in records.items():
                yield kind, key, (rec[0], rec[1], _index(rec))

    def sequences(self) -> dict[str, int]:
        return dict(self._seqs)

    # -- internals -----------------------------------------------------------------------------------------

    def _swap(
        self,
        kinds: dict[str, _Records],
        parts: dict[tuple[str, str], SortedList],
        seqs: dict[str, int],
    ) -> None:
        # Replacing the containers (instead of emptying them) makes undo O(1): the log keeps the old ones.
        if self._undo is not None:
            self._undo.append(("all", self._kinds, self._parts, self._seqs))
        self._kinds, self._parts, self._seqs = kinds, parts, seqs
        self._revision += 1

    def _replace(
        self, kind: str, key: str, old: _Rec | None, new: _Rec | None, new_index: Mapping[str, tuple[str, int]]
    ) -> None:
        """Move one record from state ``old`` to ``new`` (None: absent; ``new_index``: its index entries, which
        the caller has at hand), touching only changed entries."""
        self._revision += 1
        old_index = {} if old is None else _index(old)
        for name, (part, sort) in old_index.items():
            if new_index.get(name) != (part, sort):
                entries = self._parts[name, part]
                entries.remove((sort, key, kind))
                if not entries:
                    del self._parts[name, part]
        for name, (part, sort) in new_index.items():
            if old_index.get(name) != (part, sort):
                entries = self._parts.get((name, part))
                if entries is None:
                    entries = self._parts[name, part] = SortedList()
                entries.add((sort, key, kind))
        if new is None:
            records = self._kinds[kind]
            del records[key]
            if not records:
                del self._kinds[kind]
        else:
            kept = self._kinds.get(kind)
            if kept is None:
                kept = self._kinds[kind] = _Records()
            kept[key] = new

    def _rollback_to(self, mark: int) -> None:
        assert self._undo is not None
        self._revision += 1
        log = self._undo
        while len(log) > mark:
            entry = log.pop()
            if entry[0] == "rec":
                _, kind, key, before = entry
                now = self._kinds.get(kind, _NO_RECORDS).get(key)
                self._replace(kind, key, now, before, {} if before is None else _index(before))
            elif entry[0] == "seq":
                _, name, before = entry
                if before is None:
                    self._seqs.pop(name, None)
                else:
                    self._seqs[name] = before
            else:
                _, self._kinds, self._parts, self._seqs = entry


def _record(kind: str, key: str, rec: _Rec) -> Record:
    return Record(kind, key, rec[0], decode_data(rec[1]), _index(rec))
