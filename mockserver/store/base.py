"""The state store: the one small interface between the simulated building and where its state lives.

A store holds *records*: JSON-able dicts addressed by ``(kind, key)``, each with a version that grows by one on
every write, so a stale write is detected (compare-and-set). A record may be filed under *index entries*
``index name -> (partition, sort)``; an index answers paged queries over one partition in ``sort`` order (ties
by key) and counts a partition in O(1), without reading the records it does not return. Every write touches
O(1) records and index entries, never the whole state, so a backend can be memory, a SQLite file or Redis.

Backends must be usable from one thread at a time (the building serialises access); they need not lock.

A backend that other processes write too (Redis) commits each outermost transaction optimistically: when another
process committed since the block began reading, the block's writes are refused as a whole (`CommitConflict`) and
the caller runs it again on the newer state. When it cannot reach the shared state in time it raises
`StoreUnavailable`. Single-process backends raise neither.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

#: index name -> (partition, sort key)
IndexEntries = Mapping[str, tuple[str, int]]


class VersionConflict(Exception):
    """A compare-and-set write found another version than the one it expected."""

    def __init__(self, kind: str, key: str, expected: int, actual: int) -> None:
        super().__init__(f"{kind}/{key}: expected version {expected}, found {actual}")
        self.kind = kind
        self.key = key
        self.expected = expected
        self.actual = actual


class CommitConflict(Exception):
    """Another process committed while a transaction was reading: none of the transaction's writes were kept,
    and the store now holds the newer state. Run the transaction again."""


class StoreUnavailable(Exception):
    """The shared state could not be reached, or stayed contended, past a deadline. The writes of the
    transaction that met it were refused (or, when the answer to a commit was lost, may have been kept whole)."""


class Record(NamedTuple):
    """One stored record. A named tuple, because pages build many of them and tuples are the cheapest to make."""

    kind: str
    key: str
    version: int
    data: dict[str, Any]
    # Shadows tuple.index on purpose: the store's own word for a record's index entries.
    index: dict[str, tuple[str, int]]  # type: ignore[assignment]


@dataclass(frozen=True)
class Page:
    records: list[Record]
    #: how many entries the whole partition holds
    total: int


class View(Protocol):
    """What `Store.view` answers: a context manager, for ``with`` and for ``async with``. A shared backend's view
    may also tell ``fetched_ahead``: whether ``async with`` fetched its catch-up (reads then make no call)."""

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: Any) -> Any: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc: Any) -> Any: ...


class Store(Protocol):
    """What the building needs from a backend. See the module docstring for the model."""

    @property
    def revision(self) -> Hashable | None:
        """A value that changes whenever the content may have changed (any write, rollback, load or clear,
        including another process's commit). None when other processes write the same state unseen, so that
        nothing read from it may be kept."""

    def get(self, kind: str, key: str) -> Record | None:
        """The record, or None."""

    def exists(self, kind: str, key: str) -> bool:
        """Whether the record is there, without reading it (a random probe for a free code asks this often)."""

    def put(
        self,
        kind: str,
        key: str,
        data: dict[str, Any],
        *,
        index: IndexEntries | None = None,
        expected_version: int | None = None,
    ) -> int:
        """Create or replace a record and its index entries (``index`` replaces all previous entries); answers the
        record's new version. (Not the record: no caller needs it back, and decoding it would cost every write.)

        ``expected_version``: None writes unconditionally; 0 requires that the record does not exist; n requires
        the stored version to be n. A mismatch raises `VersionConflict` and changes nothing.
        """

    def delete(self, kind: str, key: str, *, expected_version: int | None = None) -> bool:
        """Remove a record and its index entries; False when there was none. CAS as in `put`."""

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
        """Up to ``limit`` records of one partition in sort order, skipping ``offset`` entries, or starting
        strictly after sort key ``after`` (a cursor); ``reverse`` walks from the highest sort key (and ``after``
        then means strictly before). ``total`` is the partition's size."""

    def count(self, index: str, partition: str) -> int:
        """How many entries one partition of an index holds, in O(1)."""

    def lowest(self, index: str, partition: str) -> int | None:
        """The smallest sort key in one partition (None when it is empty), without reading any record."""

    def next_id(self, sequence: str, start: int = 1) -> int:
        """The next value of a named counter (the first call answers ``start``); survives restarts."""

    def unique_id(self, sequence: str, start: int = 1) -> int:
        """A value of a named counter that no other call answers, for ids that must be unique and need not say in
        which order they were drawn. A process alone with its state answers what `next_id` would; processes that
        share one state draw blocks of values, so that drawing an id is no write the others could conflict with:
        each process's ids still grow (and, one process alone, follow each other), but one process's may be
        lower than another's drawn before (a value taken in a block that was rolled back is drawn again)."""

    def transaction(self) -> AbstractContextManager[None]:
        """Group writes: all of them are kept, or (on an exception) none. Nests (inner blocks join the outer).
        A shared backend may refuse the outermost block's commit with `CommitConflict`."""

    def view(self) -> View:
        """A block (one request) whose reads see at least the state as of its first read, other processes'
        commits included: a shared backend catches up once, at that read, instead of before every read outside a
        transaction; entered with ``async with``, it fetches that catch-up without blocking the event loop. A
        no-op for a backend only this process writes."""

    def dump(self) -> dict[str, Any]:
        """The whole state as JSON-able data (records, index entries and counters)."""

    def load(self, state: dict[str, Any]) -> None:
        """Replace the whole state with what `dump` gave."""

    def clear(self) -> None:
        """Remove every record, index entry and counter."""

    def is_empty(self) -> bool:
        """True when the store holds no record."""

    def scan(self, kind: str) -> Iterator[Record]:
        """Every record of one kind, in key order (for snapshots and small kinds only)."""

    def close(self) -> None:
        """Release files and connections; the store is unusable afterwards."""
