"""The SQLite store's deep pages: narrowed with per-block counts, they list exactly what a plain walk lists."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockserver.store import MemoryStore, SqliteStore
from mockserver.store.sqlite import BLOCK_BITS, SCHEMA_VERSION

_SORTS = st.integers(-5000, 5000) | st.sampled_from([-(2**63), -(2**63) + 1, 2**63 - 1, 2**63 - 2, 0, 1023, 1024])
_OPS = st.lists(
    st.tuples(st.sampled_from(["put", "delete"]), st.integers(0, 60), _SORTS, st.sampled_from(["p1", "p2"])),
    min_size=1,
    max_size=80,
)


def _apply(store: object, ops: list[tuple[str, int, int, str]]) -> None:
    for op, key, sort, part in ops:
        if op == "put":
            store.put("code", f"k{key:03d}", {"n": key}, index={"by_user": (part, sort)})  # type: ignore[attr-defined]
        else:
            store.delete("code", f"k{key:03d}")  # type: ignore[attr-defined]


def _keys(store: object, part: str, offset: int, limit: int, reverse: bool) -> tuple[list[str], int]:
    page = store.page("by_user", part, limit=limit, offset=offset, reverse=reverse)  # type: ignore[attr-defined]
    return [record.key for record in page.records], page.total


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS, offset=st.integers(0, 70), limit=st.integers(1, 30), reverse=st.booleans())
def test_every_offset_lists_what_the_memory_store_lists(
    tmp_path_factory: pytest.TempPathFactory, ops: list, offset: int, limit: int, reverse: bool
) -> None:
    sqlite = SqliteStore(tmp_path_factory.mktemp("blocks") / "state.db")
    sqlite.deep_offset = 0  # every page through the block counts
    memory = MemoryStore()
    try:
        _apply(sqlite, ops)
        _apply(memory, ops)
        for part in ("p1", "p2"):
            assert _keys(sqlite, part, offset, limit, reverse) == _keys(memory, part, offset, limit, reverse)
    finally:
        sqlite.close()


def test_a_deep_page_of_many_codes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    count = 5 * (1 << BLOCK_BITS) + 17
    with store.transaction():
        for n in range(count):
            store.put("code", f"{n:06d}", {"n": n}, index={"by_user": ("13", 1000 + n)})
    middle = store.page("by_user", "13", limit=25, offset=count // 2, reverse=True)
    assert [r.data["n"] for r in middle.records] == list(range(count - 1 - count // 2, count - 26 - count // 2, -1))
    last = store.page("by_user", "13", limit=25, offset=count - 3)
    assert [r.data["n"] for r in last.records] == [count - 3, count - 2, count - 1]
    assert store.page("by_user", "13", limit=25, offset=count).records == []
    store.close()


def test_a_version_1_file_gains_its_block_counts(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    count = 3 * (1 << BLOCK_BITS)
    with store.transaction():
        for n in range(count):
            store.put("code", f"{n:06d}", {"n": n}, index={"by_user": ("13", -n * 7)})
    expected = store.page("by_user", "13", limit=10, offset=count - 100, reverse=True)
    store.close()
    with sqlite3.connect(path) as conn:  # as the previous version left it
        conn.execute("DROP TABLE blocks")
        conn.execute("UPDATE meta SET value = 1 WHERE name = 'schema_version'")
    store = SqliteStore(path)
    assert store.page("by_user", "13", limit=10, offset=count - 100, reverse=True) == expected
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("SELECT sum(n) FROM blocks").fetchone() == (count,)
