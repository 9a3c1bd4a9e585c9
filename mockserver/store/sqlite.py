"""The SQLite store: one file, durable across a killed process.

Every write outside `transaction()` is its own committed transaction; inside one, a single commit at the end.
WAL with ``synchronous=NORMAL`` keeps committed transactions through a process crash (only a power loss may
drop the last few), at a fraction of the cost of ``FULL``.

Index entries live in their own table, keyed for the paged walk, and per-partition counts are kept up to date
by every write, so neither `page` nor `count` ever scans. SQLite steps over an OFFSET one entry at a time, so
each partition also keeps how many entries fall in each block of 1,024 sort keys: a deep page first finds its
block from those counts, then steps over at most one block's entries.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from os import PathLike
from typing import Any

from .base import IndexEntries, Page, Record, VersionConflict
from .memory import (
    DUMP_FORMAT,
    check_page_args,
    checked_put,
    decode_data,
    dump_record,
    parse_dump,
)

#: bump on any change of the tables below, with a migration from the previous version
SCHEMA_VERSION = 2
#: a block holds the entries whose sort keys agree but for their last BLOCK_BITS bits
BLOCK_BITS = 10

_BLOCKS_TABLE = (
    "CREATE TABLE blocks (idx TEXT NOT NULL, part TEXT NOT NULL, block INTEGER NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY (idx, part, block)) WITHOUT ROWID"
)
_SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID",
    """CREATE TABLE records (
        kind TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL,
        data TEXT NOT NULL,  -- JSON object
        idx TEXT NOT NULL,   -- JSON {index name: [partition, sort]}, to find the entries to drop on rewrite
        PRIMARY KEY (kind, key)) WITHOUT ROWID""",
    # kind is in the key only so that two kinds may file the same key under one partition.
    """CREATE TABLE entries (
        idx TEXT NOT NULL, part TEXT NOT NULL, sort INTEGER NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL,
        PRIMARY KEY (idx, part, sort, key, kind)) WITHOUT ROWID""",
    "CREATE TABLE counts (idx TEXT NOT NULL, part TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (idx, part))"
    " WITHOUT ROWID",
    "CREATE TABLE sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    _BLOCKS_TABLE,
)

_SELECT_RECORD = "SELECT version, data, idx FROM records WHERE kind = ? AND key = ?"
_SELECT_EXISTS = "SELECT 1 FROM records WHERE kind = ? AND key = ?"
_SELECT_OLD = "SELECT version, idx FROM records WHERE kind = ? AND key = ?"
_UPSERT_RECORD = (
    "INSERT INTO records (kind, key, version, data, idx) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (kind, key)"
    " DO UPDATE SET version = excluded.version, data = excluded.data, idx = excluded.idx"
)
_DELETE_ENTRY = "DELETE FROM entries WHERE idx = ? AND part = ? AND sort = ? AND key = ? AND kind = ?"
_INSERT_ENTRY = "INSERT INTO entries (idx, part, sort, key, kind) VALUES (?, ?, ?, ?, ?)"
_DECREMENT = "UPDATE counts SET n = n - 1 WHERE idx = ? AND part = ? RETURNING n"
_DROP_COUNT = "DELETE FROM counts WHERE idx = ? AND part = ?"
_INCREMENT = "INSERT INTO counts (idx, part, n) VALUES (?, ?, 1) ON CONFLICT (idx, part) DO UPDATE SET n = n + 1"
_COUNT = "SELECT n FROM counts WHERE idx = ? AND part = ?"
_BLOCK_DECREMENT = "UPDATE blocks SET n = n - 1 WHERE idx = ? AND part = ? AND block = ? RETURNING n"
_BLOCK_DROP = "DELETE FROM blocks WHERE idx = ? AND part = ? AND block = ?"
_BLOCK_INCREMENT = (
    "INSERT INTO blocks (idx, part, block, n) VALUES (?, ?, ?, 1)"
    " ON CONFLICT (idx, part, block) DO UPDATE SET n = n + 1"
)
#: the block holding entry number ? of a partition (in walk order), and how many entries the blocks before it hold
_SEEK = {
    reverse: (
        "SELECT block, upto - n FROM (SELECT block, n, SUM(n) OVER (ORDER BY block"
        f"{' DESC' if reverse else ''} ROWS UNBOUNDED PRECEDING) AS upto FROM blocks WHERE idx = ? AND part = ?)"
        " WHERE upto > ? LIMIT 1"
    )
    for reverse in (False, True)
}
_NEXT_ID = (
    "INSERT INTO sequences (name, value) VALUES (?, ?)"
    " ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value"
)


def _page_sql(cursor: bool, reverse: bool) -> str:
    # The inner select walks the entries key alone (covering, no table access) and stops after
    # offset + limit rows; only the rows kept are joined to their records.
    direction = "DESC" if reverse else "ASC"
    order = f"sort {direction}, key {direction}, kind {direction}"
    where = "idx = ? AND part = ?"
    if cursor:
        where += " AND sort < ?" if reverse else " AND sort > ?"
    return (
        "SELECT e.kind, e.key, r.version, r.data, r.idx"
        f" FROM (SELECT kind, key, sort FROM entries WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?) AS e"
        " JOIN records AS r ON r.kind = e.kind AND r.key = e.key"
        f" ORDER BY e.sort {direction}, e.key {direction}, e.kind {direction}"
    )


_PAGE_SQL = {(cursor, reverse): _page_sql(cursor, reverse) for cursor in (False, True) for reverse in (False, True)}


class StateFileError(RuntimeError):
    """The state file cannot be opened, or is not a SQLite file."""


class SchemaMismatch(RuntimeError):
    """The file was written by another schema version of this store."""


def _encode_index(index: dict[str, tuple[str, int]]) -> str:
    return json.dumps({name: [part, sort] for name, (part, sort) in index.items()}, separators=(",", ":"))


def _decode_index(text: str) -> dict[str, tuple[str, int]]:
    return {name: (part, sort) for name, (part, sort) in json.loads(text).items()}


def _record(kind: str, key: str, version: int, data: str, idx: str) -> Record:
    return Record(kind, key, version, decode_data(data), _decode_index(idx))


class SqliteStore:
    """A `Store` in one SQLite file (created when missing, reopened with its content when present)."""

    def __init__(self, path: str | PathLike[str]) -> None:
        # isolation_level=None: the module opens no transactions behind our back; we issue BEGIN ourselves.
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StateFileError(f"cannot use {path} as the state file: {exc}") from exc
        self._depth = 0  # nesting of transaction() blocks
        self._closed = False
        self._writes = 0
        #: offsets from here on are narrowed with the block counts (below, stepping over them costs less)
        self.deep_offset = 1 << BLOCK_BITS
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = OFF")
            with self._write():
                self._migrate()
        except sqlite3.Error as exc:
            # Not a SQLite file, or one this process may not write (a read-only place, a locked file).
            self._conn.close()
            raise StateFileError(f"cannot use {path} as the state file: {exc}") from exc
        except BaseException:
            self._conn.close()
            raise

    def _migrate(self) -> None:
        has_meta = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        if not has_meta:
            for statement in _SCHEMA:
                self._conn.execute(statement)
            self._conn.execute("INSERT INTO meta (name, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            return
        row = self._conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        found = row[0] if row else None
        if found == 1:
            # Version 2 added the per-block counts; they are worked out from the entries once.
            self._conn.execute(_BLOCKS_TABLE)
            self._conn.execute(
                f"INSERT INTO blocks (idx, part, block, n) SELECT idx, part, sort >> {BLOCK_BITS}, count(*)"
                f" FROM entries GROUP BY idx, part, sort >> {BLOCK_BITS}"
            )
            self._conn.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (SCHEMA_VERSION,))
            found = SCHEMA_VERSION
        if found != SCHEMA_VERSION:
            raise SchemaMismatch(f"store schema version {found!r}, this code reads version {SCHEMA_VERSION}")

    @property
    def revision(self) -> tuple[int, int]:
        """Our own writes and rollbacks, and SQLite's count of other connections' commits to the file."""
        [(version,)] = self._conn.execute("PRAGMA data_version").fetchall()
        return self._writes, version

    # -- reads ---------------------------------------------------------------------------------------------

    def get(self, kind: str, key: str) -> Record | None:
        """The record, or None."""
        row = self._conn.execute(_SELECT_RECORD, (kind, key)).fetchone()
        return None if row is None else _record(kind, key, *row)

    def exists(self, kind: str, key: str) -> bool:
        """Whether the record is there, answered from the primary key alone."""
        return self._conn.execute(_SELECT_EXISTS, (kind, key)).fetchone() is not None

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
        """Up to ``limit`` records of one partition in (sort, key) order; see `Store.page`.

        SQLite steps over an OFFSET entry by entry (on the covering key, without reading records). Without a
        cursor, an offset past the first block is first narrowed with the per-block counts: the walk starts at
        the block holding the first entry asked for, so it steps over fewer than 1,024 entries plus one count per
        block before it, instead of every entry before it."""
        check_page_args(limit, offset)
        total = self.count(index, partition)
        if total == 0 or limit == 0:
            return Page([], total)
        params: tuple[Any, ...] = (index, partition) if after is None else (index, partition, after)
        if after is None and offset >= self.deep_offset:
            found = self._conn.execute(_SEEK[reverse], (index, partition, offset)).fetchone()
            if found is None:
                return Page([], total)  # past the end
            block, before = found
            if before:
                # Every entry of the blocks before this one, and none of its own, lies beyond this bound.
                bound = (block + 1) << BLOCK_BITS if reverse else (block << BLOCK_BITS) - 1
                params, offset = (index, partition, bound), offset - before
        rows = self._conn.execute(_PAGE_SQL[len(params) == 3, reverse], (*params, limit, offset)).fetchall()
        return Page([_record(*row) for row in rows], total)

    def count(self, index: str, partition: str) -> int:
        """How many entries one partition holds, from the maintained counts table."""
        row = self._conn.execute(_COUNT, (index, partition)).fetchone()
        return 0 if row is None else row[0]

    def lowest(self, index: str, partition: str) -> int | None:
        """The smallest sort key of one partition, or None (one step down the entries index)."""
        row = self._conn.execute(
            "SELECT sort FROM entries WHERE idx = ? AND part = ? ORDER BY sort LIMIT 1", (index, partition)
        ).fetchone()
        return None if row is None else row[0]

    def scan(self, kind: str) -> Iterator[Record]:
        """Every record of one kind in key order; read up front, so writing while iterating is safe."""
        rows = self._conn.execute(
            "SELECT key, version, data, idx FROM records WHERE kind = ? ORDER BY key", (kind,)
        ).fetchall()
        return iter([_record(kind, *row) for row in rows])

    def is_empty(self) -> bool:
        """True when the store holds no record."""
        return self._conn.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None

    def dump(self) -> dict[str, Any]:
        """The whole state as JSON-able data, in the same layout as `MemoryStore.dump`."""
        records = self._conn.execute("SELECT kind, key, version, data, idx FROM records ORDER BY kind, key")
        sequences = self._conn.execute("SELECT name, value FROM sequences ORDER BY name")
        return {
            "format": DUMP_FORMAT,
            "records": [
                dump_record(kind, key, version, data, _decode_index(idx)) for kind, key, version, data, idx in records
            ],
            "sequences": dict(sequences.fetchall()),
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
        with self._write():
            row = self._conn.execute(_SELECT_OLD, (kind, key)).fetchone()
            actual = 0 if row is None else row[0]
            if expected_version is not None and expected_version != actual:
                raise VersionConflict(kind, key, expected_version, actual)
            self._refile(kind, key, {} if row is None else _decode_index(row[1]), entries)
            self._conn.execute(_UPSERT_RECORD, (kind, key, actual + 1, encoded, _encode_index(entries)))
        return actual + 1

    def delete(self, kind: str, key: str, *, expected_version: int | None = None) -> bool:
        """Remove a record and its index entries; False when there was none."""
        with self._write():
            row = self._conn.execute(_SELECT_OLD, (kind, key)).fetchone()
            actual = 0 if row is None else row[0]
            if expected_version is not None and expected_version != actual:
                raise VersionConflict(kind, key, expected_version, actual)
            if row is None:
                return False
            self._refile(kind, key, _decode_index(row[1]), {})
            self._conn.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, key))
        return True

    def next_id(self, sequence: str, start: int = 1) -> int:
        """The next value of a named counter; the first call answers ``start``."""
        with self._write():
            [(value,)] = self._conn.execute(_NEXT_ID, (sequence, start)).fetchall()
        return int(value)

    def unique_id(self, sequence: str, start: int = 1) -> int:
        """A value no other call answers: `next_id`'s (a SQLite counter is one write of its transaction)."""
        return self.next_id(sequence, start)

    def view(self) -> nullcontext[None]:
        """Nothing to catch up with: SQLite reads another connection's commits as they land."""
        return nullcontext()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes in the block are kept (one commit at the end), or none. An inner block joins the outer
        one; if it raises, its own writes are undone (a savepoint) before the exception leaves it."""
        if self._depth == 0:
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._rollback()
                raise
            self._depth = 0
            self._commit()
        else:
            name = f"nested{self._depth}"
            self._conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._writes += 1
                self._conn.execute(f"ROLLBACK TO {name}")
                raise
            finally:
                self._depth -= 1
                self._conn.execute(f"RELEASE {name}")

    def load(self, state: dict[str, Any]) -> None:
        """Replace the whole state with what `dump` gave (from either backend), atomically."""
        records, sequences = parse_dump(state)
        counts: Counter[tuple[str, str]] = Counter()
        blocks: Counter[tuple[str, str, int]] = Counter()
        entries = []
        for kind, key, _, _, index in records:
            for name, (part, sort) in index.items():
                entries.append((name, part, sort, key, kind))
                counts[name, part] += 1
                blocks[name, part, sort >> BLOCK_BITS] += 1
        with self._write():
            self._delete_all()
            self._conn.executemany(
                "INSERT INTO records (kind, key, version, data, idx) VALUES (?, ?, ?, ?, ?)",
                [(kind, key, version, data, _encode_index(index)) for kind, key, version, data, index in records],
            )
            self._conn.executemany(_INSERT_ENTRY, entries)
            self._conn.executemany(
                "INSERT INTO counts (idx, part, n) VALUES (?, ?, ?)", [(*p, n) for p, n in counts.items()]
            )
            self._conn.executemany(
                "INSERT INTO blocks (idx, part, block, n) VALUES (?, ?, ?, ?)", [(*b, n) for b, n in blocks.items()]
            )
            self._conn.executemany("INSERT INTO sequences (name, value) VALUES (?, ?)", sequences.items())

    def clear(self) -> None:
        """Remove every record, index entry and counter."""
        with self._write():
            self._delete_all()

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back); the store is unusable afterwards."""
        self._closed = True
        self._conn.close()

    # -- internals -----------------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[None]:
        """Make one write atomic: its own committed transaction outside `transaction()`, else a savepoint."""
        self._writes += 1
        if self._depth == 0:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._commit()
        else:
            self._conn.execute("SAVEPOINT write")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK TO write")
                raise
            finally:
                self._conn.execute("RELEASE write")

    def _rollback(self) -> None:
        self._writes += 1
        # A block left open by close() (its generator finalised later) has nothing left to roll back.
        if not self._closed:
            self._conn.execute("ROLLBACK")

    def _commit(self) -> None:
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (I/O error, full disk) may leave the transaction open; do not let the next
            # write join it.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _refile(self, kind: str, key: str, old: dict[str, tuple[str, int]], new: dict[str, tuple[str, int]]) -> None:
        """Move a record's index entries from ``old`` to ``new``, keeping counts; unchanged ones stay."""
        execute = self._conn.execute
        for name, (part, sort) in old.items():
            if new.get(name) != (part, sort):
                execute(_DELETE_ENTRY, (name, part, sort, key, kind))
                [(left,)] = execute(_DECREMENT, (name, part)).fetchall()
                if left == 0:
                    execute(_DROP_COUNT, (name, part))
                block = (name, part, sort >> BLOCK_BITS)
                [(left,)] = execute(_BLOCK_DECREMENT, block).fetchall()
                if left == 0:
                    execute(_BLOCK_DROP, block)
        for name, (part, sort) in new.items():
            if old.get(name) != (part, sort):
                execute(_INSERT_ENTRY, (name, part, sort, key, kind))
                execute(_INCREMENT, (name, part))
                execute(_BLOCK_INCREMENT, (name, part, sort >> BLOCK_BITS))

    def _delete_all(self) -> None:
        for table in ("records", "entries", "counts", "blocks", "sequences"):
            self._conn.execute(f"DELETE FROM {table}")
