"""The `Store` contract, run against every backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import mockserver
from mockserver.store import MemoryStore, Page, Record, SqliteStore, Store, VersionConflict, open_store
from mockserver.store.sqlite import SchemaMismatch

BACKENDS = ["memory", "sqlite", "redis"]
REDIS_URL = os.environ.get("DOORCODES_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
_redis_stores: list[Any] = []


def redis_available() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:
        return False
    return True


needs_redis = pytest.mark.skipif(
    not redis_available(),
    reason=f"no Redis server at {REDIS_URL}; set DOORCODES_TEST_REDIS_URL or start one (.ci/run does)",
)


def make_store(backend: str, path: Path) -> Store:
    if backend == "memory":
        return MemoryStore()
    if backend == "sqlite":
        return SqliteStore(path)
    from mockserver.store.redis_store import RedisStore

    # A namespace per store: tests share one Redis database without seeing each other.
    store = RedisStore(REDIS_URL, namespace=f"test-{uuid.uuid4().hex}")
    _redis_stores.append(store)
    return store


@pytest.fixture(autouse=True, scope="module")
def _drop_redis_namespaces() -> Iterator[None]:
    yield
    for store in _redis_stores:
        store.clear()
        store._redis.delete(f"{store.namespace}:lock")
        store.close()
    _redis_stores.clear()


@pytest.fixture(params=[pytest.param(b, marks=needs_redis) if b == "redis" else b for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[Store]:
    s = make_store(backend, tmp_path / "state.db")
    yield s
    s.close()


def keys(page: Page) -> list[str]:
    return [r.key for r in page.records]


def file_doors(store: Store, sorts: dict[str, int], partition: str = "site-1") -> None:
    for key, sort in sorts.items():
        store.put("door", key, {"name": key}, index={"by_site": (partition, sort)})


# -- get / put / delete ------------------------------------------------------------------------------------


def test_get_missing_is_none(store: Store) -> None:
    assert store.get("door", "nope") is None


def test_put_then_get(store: Store) -> None:
    data = {"name": "Front", "tags": ["a", "b"], "meta": {"floor": 2, "ok": True, "none": None}, "f": 1.5}
    assert store.put("door", "d1", data, index={"by_site": ("s1", 5)}) == 1
    assert store.get("door", "d1") == Record("door", "d1", 1, data, {"by_site": ("s1", 5)})


def test_exists_follows_puts_deletes_and_rollbacks(store: Store) -> None:
    assert store.exists("door", "d1") is False
    store.put("door", "d1", {"name": "Front"})
    assert store.exists("door", "d1") is True
    assert store.exists("member", "d1") is False  # kinds are separate
    with pytest.raises(Boom), store.transaction():
        store.put("door", "d2", {})
        assert store.exists("door", "d2") is True  # a transaction sees its own writes
        raise Boom
    assert store.exists("door", "d2") is False
    store.delete("door", "d1")
    assert store.exists("door", "d1") is False


def test_kinds_are_separate(store: Store) -> None:
    store.put("door", "x", {"a": 1})
    store.put("member", "x", {"b": 2})
    assert store.get("door", "x").data == {"a": 1}
    assert store.get("member", "x").data == {"b": 2}


def test_versions_increase_by_one(store: Store) -> None:
    assert [store.put("door", "d1", {"n": n}) for n in range(4)] == [1, 2, 3, 4]
    assert store.get("door", "d1").version == 4
    assert store.get("door", "d1").data == {"n": 3}


def test_delete(store: Store) -> None:
    store.put("door", "d1", {})
    assert store.delete("door", "d1") is True
    assert store.get("door", "d1") is None
    assert store.delete("door", "d1") is False
    # Recreated after a delete, a record starts over at version 1.
    assert store.put("door", "d1", {}) == 1


def test_non_json_data_is_refused_and_changes_nothing(store: Store) -> None:
    store.put("door", "d1", {"ok": 1}, index={"i": ("p", 1)})
    with pytest.raises((TypeError, ValueError)):
        store.put("door", "d1", {"bad": object()}, index={"i": ("q", 2)})
    with pytest.raises(ValueError):
        store.put("door", "d1", {"nan": float("nan")})
    assert store.get("door", "d1") == Record("door", "d1", 1, {"ok": 1}, {"i": ("p", 1)})
    assert store.count("i", "q") == 0


def test_bad_index_entries_are_refused(store: Store) -> None:
    with pytest.raises(TypeError):
        store.put("door", "d1", {}, index={"i": ("p", "not-an-int")})
    with pytest.raises(TypeError):
        store.put("door", "d1", {}, index={"i": ("p", 1.5)})
    with pytest.raises(ValueError):
        store.put("door", "d1", {}, index={"i": ("p", 2**63)})
    assert store.is_empty()


# -- compare-and-set ---------------------------------------------------------------------------------------


def test_cas_create_only(store: Store) -> None:
    assert store.put("door", "d1", {"v": 1}, expected_version=0) == 1
    with pytest.raises(VersionConflict) as err:
        store.put("door", "d1", {"v": 2}, index={"i": ("p", 1)}, expected_version=0)
    assert (err.value.kind, err.value.key, err.value.expected, err.value.actual) == ("door", "d1", 0, 1)
    assert store.get("door", "d1") == Record("door", "d1", 1, {"v": 1}, {})
    assert store.count("i", "p") == 0


def test_cas_stale_and_right_version(store: Store) -> None:
    store.put("door", "d1", {"v": 1}, index={"i": ("p", 1)})
    store.put("door", "d1", {"v": 2}, index={"i": ("p", 2)})
    with pytest.raises(VersionConflict) as err:
        store.put("door", "d1", {"v": 3}, index={"i": ("q", 3)}, expected_version=1)
    assert (err.value.expected, err.value.actual) == (1, 2)
    assert store.get("door", "d1") == Record("door", "d1", 2, {"v": 2}, {"i": ("p", 2)})
    assert (store.count("i", "p"), store.count("i", "q")) == (1, 0)
    assert store.put("door", "d1", {"v": 3}, expected_version=2) == 3


def test_cas_on_missing_record(store: Store) -> None:
    with pytest.raises(VersionConflict) as err:
        store.put("door", "d1", {}, expected_version=1)
    assert err.value.actual == 0
    assert store.get("door", "d1") is None


def test_cas_delete(store: Store) -> None:
    store.put("door", "d1", {}, index={"i": ("p", 1)})
    store.put("door", "d1", {}, index={"i": ("p", 1)})
    for wrong in (0, 1, 3):
        with pytest.raises(VersionConflict):
            store.delete("door", "d1", expected_version=wrong)
    assert store.get("door", "d1").version == 2
    assert store.count("i", "p") == 1
    assert store.delete("door", "d1", expected_version=2) is True
    assert store.count("i", "p") == 0
    # Deleting what is not there: fine when absence was expected, a conflict when a version was.
    assert store.delete("door", "d1", expected_version=0) is False
    with pytest.raises(VersionConflict):
        store.delete("door", "d1", expected_version=2)


# -- index entries -----------------------------------------------------------------------------------------


def test_put_replaces_all_index_entries(store: Store) -> None:
    store.put("door", "d1", {}, index={"by_site": ("s1", 1), "by_zone": ("z1", 1)})
    store.put("door", "d1", {}, index={"by_site": ("s2", 7)})
    assert store.count("by_site", "s1") == 0
    assert store.count("by_zone", "z1") == 0
    assert store.count("by_site", "s2") == 1
    assert keys(store.page("by_site", "s1", limit=10)) == []
    assert keys(store.page("by_zone", "z1", limit=10)) == []
    assert store.get("door", "d1").index == {"by_site": ("s2", 7)}
    # Moving within a partition (new sort key) keeps one entry, in its new place.
    store.put("door", "d0", {}, index={"by_site": ("s2", 5)})
    store.put("door", "d1", {}, index={"by_site": ("s2", 1)})
    assert keys(store.page("by_site", "s2", limit=10)) == ["d1", "d0"]
    assert store.count("by_site", "s2") == 2
    store.put("door", "d1", {})
    assert store.count("by_site", "s2") == 1
    assert store.get("door", "d1").index == {}


def test_rewrite_with_same_index_keeps_one_entry(store: Store) -> None:
    for _ in range(3):
        store.put("door", "d1", {}, index={"by_site": ("s1", 1)})
    assert store.count("by_site", "s1") == 1
    assert keys(store.page("by_site", "s1", limit=10)) == ["d1"]


def test_delete_removes_entries_and_counts(store: Store) -> None:
    file_doors(store, {"a": 1, "b": 2})
    store.put("door", "c", {}, index={"by_site": ("site-1", 3), "by_zone": ("z", 0)})
    assert store.delete("door", "c")
    assert store.count("by_site", "site-1") == 2
    assert store.count("by_zone", "z") == 0
    assert keys(store.page("by_site", "site-1", limit=10)) == ["a", "b"]
    assert store.page("by_zone", "z", limit=10) == Page([], 0)


def test_same_key_of_two_kinds_in_one_partition(store: Store) -> None:
    store.put("door", "x", {"k": "door"}, index={"all": ("p", 1)})
    store.put("gate", "x", {"k": "gate"}, index={"all": ("p", 1)})
    assert store.count("all", "p") == 2
    assert [r.kind for r in store.page("all", "p", limit=10).records] == ["door", "gate"]
    store.delete("door", "x")
    assert [r.data for r in store.page("all", "p", limit=10).records] == [{"k": "gate"}]


# -- paging ------------------------------------------------------------------------------------------------

SORTS = {"e": 3, "a": 1, "d": 2, "b": 2, "c": 2, "f": 5}
FORWARD = ["a", "b", "c", "d", "e", "f"]  # by sort, ties by key


def test_page_order_and_ties(store: Store) -> None:
    file_doors(store, SORTS)
    page = store.page("by_site", "site-1", limit=100)
    assert keys(page) == FORWARD
    assert page.total == 6
    assert page.records[0] == store.get("door", "a")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"limit": 2}, ["a", "b"]),
        ({"limit": 2, "offset": 2}, ["c", "d"]),
        ({"limit": 10, "offset": 4}, ["e", "f"]),
        ({"limit": 10, "offset": 6}, []),
        ({"limit": 10, "offset": 60}, []),
        ({"limit": 0}, []),
        ({"limit": 10, "after": 1}, ["b", "c", "d", "e", "f"]),
        ({"limit": 2, "after": 2}, ["e", "f"]),
        ({"limit": 2, "after": 0}, ["a", "b"]),
        ({"limit": 2, "after": 1, "offset": 1}, ["c", "d"]),
        ({"limit": 10, "after": 5}, []),
        ({"limit": 10, "after": -100}, FORWARD),
        ({"limit": 2, "reverse": True}, ["f", "e"]),
        ({"limit": 3, "reverse": True, "offset": 2}, ["d", "c", "b"]),
        ({"limit": 10, "reverse": True}, FORWARD[::-1]),
        ({"limit": 10, "reverse": True, "offset": 6}, []),
        ({"limit": 10, "reverse": True, "after": 3}, ["d", "c", "b", "a"]),
        ({"limit": 2, "reverse": True, "after": 3, "offset": 1}, ["c", "b"]),
        ({"limit": 10, "reverse": True, "after": 1}, []),
        ({"limit": 10, "reverse": True, "after": 100}, FORWARD[::-1]),
        ({"limit": 0, "reverse": True}, []),
    ],
)
def test_page_windows(store: Store, kwargs: dict[str, Any], expected: list[str]) -> None:
    file_doors(store, SORTS)
    file_doors(store, {"other": 2}, partition="site-2")
    page = store.page("by_site", "site-1", **kwargs)
    assert keys(page) == expected
    assert page.total == 6


def test_page_cursor_walk(store: Store) -> None:
    file_doors(store, {f"k{i:02d}": i for i in range(23)})
    seen, after = [], None
    while True:
        page = store.page("by_site", "site-1", limit=5, after=after)
        if not page.records:
            break
        seen += keys(page)
        after = page.records[-1].index["by_site"][1]
    assert seen == [f"k{i:02d}" for i in range(23)]


def test_page_of_unknown_partition(store: Store) -> None:
    assert store.page("nope", "nope", limit=10) == Page([], 0)
    assert store.page("nope", "nope", limit=10, reverse=True, after=3) == Page([], 0)
    assert store.count("nope", "nope") == 0


def test_page_rejects_negative_arguments(store: Store) -> None:
    with pytest.raises(ValueError):
        store.page("by_site", "site-1", limit=-1)
    with pytest.raises(ValueError):
        store.page("by_site", "site-1", limit=1, offset=-1)


def test_count(store: Store) -> None:
    file_doors(store, SORTS)
    file_doors(store, {"x": 1, "y": 1}, partition="site-2")
    assert store.count("by_site", "site-1") == 6
    assert store.count("by_site", "site-2") == 2
    assert store.count("by_zone", "site-1") == 0


# -- sequences ---------------------------------------------------------------------------------------------


def test_next_id(store: Store) -> None:
    assert [store.next_id("member") for _ in range(3)] == [1, 2, 3]
    assert store.next_id("order", start=1000) == 1000
    assert store.next_id("order", start=1000) == 1001
    assert store.next_id("member", start=500) == 4  # start only matters on the first call


# -- transactions ------------------------------------------------------------------------------------------


class Boom(Exception):
    pass


def populate(store: Store) -> None:
    store.put("door", "a", {"v": 1}, index={"by_site": ("s1", 1)})
    store.put("door", "b", {"v": 1}, index={"by_site": ("s1", 2), "by_zone": ("z1", 1)})
    store.next_id("seq")


def test_transaction_commit(store: Store) -> None:
    populate(store)
    with store.transaction():
        store.put("door", "c", {"v": 1}, index={"by_site": ("s1", 3)})
        store.delete("door", "a")
        assert store.next_id("seq") == 2
        # The block sees its own writes.
        assert keys(store.page("by_site", "s1", limit=10)) == ["b", "c"]
    assert keys(store.page("by_site", "s1", limit=10)) == ["b", "c"]
    assert store.next_id("seq") == 3


def test_transaction_rollback(store: Store) -> None:
    populate(store)
    before = store.dump()
    with pytest.raises(Boom), store.transaction():
        store.put("door", "a", {"v": 2}, index={"by_site": ("s2", 9)})
        store.put("door", "c", {"v": 1}, index={"by_site": ("s1", 0), "by_zone": ("z1", 0)})
        store.put("door", "c", {"v": 2}, index={"by_site": ("s3", 0)})
        store.delete("door", "b")
        store.next_id("seq")
        store.next_id("new-seq")
        store.put("door", "d", {}, expected_version=0)
        raise Boom
    assert store.dump() == before
    assert keys(store.page("by_site", "s1", limit=10)) == ["a", "b"]
    assert (store.count("by_site", "s1"), store.count("by_site", "s2"), store.count("by_site", "s3")) == (
        2,
        0,
        0,
    )
    assert store.count("by_zone", "z1") == 1
    assert store.get("door", "a").version == 1
    assert store.next_id("seq") == 2
    assert store.next_id("new-seq") == 1


def test_transaction_rollback_of_clear_and_load(store: Store) -> None:
    populate(store)
    before = store.dump()
    with pytest.raises(Boom), store.transaction():
        store.put("door", "a", {"v": 2})
        store.clear()
        store.put("door", "z", {}, index={"by_site": ("s1", 0)})
        store.load({"records": [{"kind": "k", "key": "q", "version": 3, "data": {}, "index": {}}]})
        store.put("door", "a", {"v": 9})
        raise Boom
    assert store.dump() == before
    assert store.count("by_site", "s1") == 2


def test_conflict_inside_transaction_rolls_back_everything(store: Store) -> None:
    populate(store)
    before = store.dump()
    with pytest.raises(VersionConflict), store.transaction():
        store.put("door", "c", {})
        store.put("door", "a", {}, expected_version=0)
    assert store.dump() == before


def test_nested_transactions_join_the_outer(store: Store) -> None:
    populate(store)
    before = store.dump()
    with pytest.raises(Boom), store.transaction():
        with store.transaction():
            store.put("door", "c", {})
            with store.transaction():
                store.next_id("seq")
        # The inner blocks have ended, yet nothing is final until the outer one is.
        assert store.get("door", "c") is not None
        raise Boom
    assert store.dump() == before
    with store.transaction():
        with store.transaction():
            store.put("door", "c", {})
        store.put("door", "d", {})
    assert store.get("door", "c") is not None
    assert store.get("door", "d") is not None


def test_failed_inner_block_undoes_only_itself(store: Store) -> None:
    populate(store)
    with store.transaction():
        store.put("door", "c", {}, index={"by_site": ("s1", 3)})
        with pytest.raises(Boom), store.transaction():
            store.put("door", "d", {}, index={"by_site": ("s1", 4)})
            store.delete("door", "a")
            raise Boom
        store.put("door", "e", {})
    assert keys(store.page("by_site", "s1", limit=10)) == ["a", "b", "c"]
    assert store.get("door", "d") is None
    assert store.get("door", "e") is not None


def test_store_is_usable_after_a_rollback(store: Store) -> None:
    with pytest.raises(Boom), store.transaction():
        store.put("door", "a", {})
        raise Boom
    store.put("door", "b", {})
    with store.transaction():
        store.put("door", "c", {})
    assert [r.key for r in store.scan("door")] == ["b", "c"]


# -- dump / load / clear / scan ----------------------------------------------------------------------------


def test_dump_is_json_and_load_round_trips(backend: str, store: Store, tmp_path: Path) -> None:
    populate(store)
    store.put("member", "m1", {"nested": {"l": [1, {"x": None}]}}, index={"by_site": ("s1", -5)})
    store.put("door", "a", {"v": 2}, index={"by_site": ("s1", 1)})
    dumped = store.dump()
    assert json.loads(json.dumps(dumped)) == dumped
    for other_backend in BACKENDS:
        other = make_store(other_backend, tmp_path / f"copy-{other_backend}.db")
        other.put("junk", "j", {}, index={"by_site": ("s1", 0)})
        other.next_id("junk")
        other.load(dumped)
        assert other.dump() == dumped
        assert other.get("door", "a") == store.get("door", "a")
        assert keys(other.page("by_site", "s1", limit=10)) == ["m1", "a", "b"]
        assert other.count("by_site", "s1") == 3
        assert other.count("by_zone", "z1") == 1
        assert other.next_id("seq") == 2
        assert other.next_id("junk") == 1
        other.close()


def test_load_of_a_malformed_dump_changes_nothing(store: Store) -> None:
    populate(store)
    before = store.dump()
    record = {"kind": "door", "key": "x", "version": 1, "data": {}, "index": {}}
    with pytest.raises(ValueError):
        store.load({"records": [record, record]})
    with pytest.raises(ValueError):
        store.load({"format": 99, "records": []})
    # Dumps of the wrong shape, as a client may send one to PUT /_mock/snapshot.
    for malformed in (5, [], {"records": 5}, {"records": [5]}, {"records": [{"kind": "door"}]}, {"sequences": []}):
        with pytest.raises(ValueError):
            store.load(malformed)  # type: ignore[arg-type]
    assert store.dump() == before


def test_clear_and_is_empty(store: Store) -> None:
    assert store.is_empty()
    populate(store)
    assert not store.is_empty()
    store.clear()
    assert store.is_empty()
    assert store.count("by_site", "s1") == 0
    assert store.page("by_site", "s1", limit=10) == Page([], 0)
    assert store.next_id("seq") == 1
    assert store.dump()["records"] == []


def test_next_id_alone_does_not_make_a_store_non_empty(store: Store) -> None:
    store.next_id("seq")
    assert store.is_empty()


def test_scan(store: Store) -> None:
    for key in ("c", "a", "b"):
        store.put("door", key, {"k": key})
    store.put("member", "a0", {})
    assert [(r.key, r.data) for r in store.scan("door")] == [
        ("a", {"k": "a"}),
        ("b", {"k": "b"}),
        ("c", {"k": "c"}),
    ]
    assert list(store.scan("nothing")) == []
    # Writing while iterating is allowed.
    for record in store.scan("door"):
        store.delete("door", record.key)
    assert list(store.scan("door")) == []


# -- isolation from callers --------------------------------------------------------------------------------


def test_mutating_returned_or_given_dicts_does_not_change_the_store(store: Store) -> None:
    data = {"tags": ["a"], "meta": {"x": 1}}
    index = {"by_site": ("s1", 1)}
    store.put("door", "d1", data, index=index)
    data["tags"].append("given")
    data["meta"]["x"] = 2
    index["by_site"] = ("s9", 9)
    for got in (
        store.get("door", "d1"),
        store.page("by_site", "s1", limit=1).records[0],
        next(store.scan("door")),
    ):
        got.data["tags"].append("got")
        got.data["meta"]["y"] = 3
        got.index["by_zone"] = ("z", 0)
    dumped = store.dump()
    dumped["records"][0]["data"]["tags"].append("dumped")
    assert store.get("door", "d1") == Record("door", "d1", 1, {"tags": ["a"], "meta": {"x": 1}}, {"by_site": ("s1", 1)})
    assert store.count("by_site", "s1") == 1


# -- SQLite only -------------------------------------------------------------------------------------------


def test_sqlite_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    populate(store)
    before = store.dump()
    store.close()
    store = SqliteStore(str(path))
    assert store.dump() == before
    assert store.count("by_site", "s1") == 2
    assert store.next_id("seq") == 2
    store.close()
    store = SqliteStore(path)
    assert store.next_id("seq") == 3
    store.close()


def test_sqlite_refuses_another_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    store._conn.execute("UPDATE meta SET value = 999 WHERE name = 'schema_version'")
    store.close()
    with pytest.raises(SchemaMismatch):
        SqliteStore(path)


def test_sqlite_uncommitted_transaction_is_lost_on_close(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    store.put("door", "kept", {})
    block = store.transaction()
    block.__enter__()
    store.put("door", "lost", {})
    store.close()  # never leaving the block, as when the process dies inside it
    store = SqliteStore(path)
    assert [r.key for r in store.scan("door")] == ["kept"]
    store.close()


def test_open_store(tmp_path: Path) -> None:
    memory = open_store(None)
    assert isinstance(memory, MemoryStore)
    sqlite = open_store(str(tmp_path / "x.db"))
    assert isinstance(sqlite, SqliteStore)
    sqlite.close()


WRITER = textwrap.dedent(
    """
    import sys
    from mockserver.store import SqliteStore

    store = SqliteStore(sys.argv[1])
    for i in range(int(sys.argv[2])):
        store.put("door", f"d{i:05d}", {"i": i}, index={"by_site": ("s1", i)})
        store.next_id("doors")
        print("ok", i, flush=True)
    """
)


def test_sqlite_acknowledged_writes_survive_kill(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    env = {**os.environ, "PYTHONPATH": str(Path(mockserver.__file__).parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), "100000"], stdout=subprocess.PIPE, text=True, env=env
    )
    acked = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            assert line == f"ok {acked}\n"
            acked += 1
            if acked == 200:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # The writer kept going while we read, so it was killed mid-stream, possibly inside a write.
    assert acked == 200
    assert proc.returncode == -signal.SIGKILL
    store = SqliteStore(path)
    stored = store.count("by_site", "s1")
    assert stored >= acked
    for i in range(acked):
        assert store.get("door", f"d{i:05d}") == Record("door", f"d{i:05d}", 1, {"i": i}, {"by_site": ("s1", i)})
    # Whatever made it in is whole: counts, entries and records agree.
    assert len(list(store.scan("door"))) == stored
    assert len(store.page("by_site", "s1", limit=10**6).records) == stored
    # The kill may fall between a put and its next_id.
    assert store.next_id("doors") in (stored, stored + 1)
    store.close()


# -- model-based -------------------------------------------------------------------------------------------

KINDS = st.sampled_from(["door", "member"])
KEYS = st.sampled_from(["a", "b", "c", "d"])
INDEXES = st.dictionaries(
    st.sampled_from(["by_site", "by_zone"]),
    st.tuples(st.sampled_from(["p1", "p2"]), st.integers(-2, 3)),
    max_size=2,
)
DATA = st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 3) | st.lists(st.integers(0, 3), max_size=2))
PARTITIONS = [(i, p) for i in ("by_site", "by_zone") for p in ("p1", "p2")]


class StoreMachine(RuleBasedStateMachine):
    """Drives a backend and a plain-dict model with the same calls and compares what they answer."""

    factory: Callable[[], Store]

    def __init__(self) -> None:
        super().__init__()
        self.store = self.factory()
        #: (kind, key) -> (version, data, index)
        self.model: dict[tuple[str, str], tuple[int, dict, dict]] = {}
        self.seqs: dict[str, int] = {}

    def teardown(self) -> None:
        self.store.close()

    def _version(self, kind: str, key: str) -> int:
        return self.model[kind, key][0] if (kind, key) in self.model else 0

    def _expected(self, kind: str, key: str, how: str) -> int | None:
        return {"none": None, "right": self._version(kind, key), "wrong": self._version(kind, key) + 1}[how]

    @initialize()
    def start_empty(self) -> None:
        assert self.store.is_empty()

    @rule(kind=KINDS, key=KEYS, data=DATA, index=INDEXES, cas=st.sampled_from(["none", "right", "wrong"]))
    def put(self, kind: str, key: str, data: dict, index: dict, cas: str) -> None:
        expected = self._expected(kind, key, cas)
        if cas == "wrong":
            with pytest.raises(VersionConflict):
                self.store.put(kind, key, data, index=index, expected_version=expected)
            return
        version = self.store.put(kind, key, data, index=index, expected_version=expected)
        self.model[kind, key] = (self._version(kind, key) + 1, data, dict(index))
        assert version == self.model[kind, key][0]
        assert self.store.get(kind, key) == Record(kind, key, *self.model[kind, key])

    @rule(kind=KINDS, key=KEYS, cas=st.sampled_from(["none", "right", "wrong"]))
    def delete(self, kind: str, key: str, cas: str) -> None:
        expected = self._expected(kind, key, cas)
        if cas == "wrong":
            with pytest.raises(VersionConflict):
                self.store.delete(kind, key, expected_version=expected)
            return
        assert self.store.delete(kind, key, expected_version=expected) == ((kind, key) in self.model)
        self.model.pop((kind, key), None)

    @rule(name=st.sampled_from(["s1", "s2"]))
    def next_id(self, name: str) -> None:
        self.seqs[name] = self.seqs.get(name, 0) + 1
        assert self.store.next_id(name) == self.seqs[name]

    @rule(
        part=st.sampled_from(PARTITIONS),
        limit=st.integers(0, 5),
        offset=st.integers(0, 6),
        after=st.none() | st.integers(-3, 4),
        reverse=st.booleans(),
    )
    def page(self, part: tuple[str, str], limit: int, offset: int, after: int | None, reverse: bool) -> None:
        index, partition = part
        entries = sorted(
            (idx[index][1], key, kind)
            for (kind, key), (_, _, idx) in self.model.items()
            if idx.get(index, (None,))[0] == partition
        )
        if reverse:
            entries = [e for e in reversed(entries) if after is None or e[0] < after]
        else:
            entries = [e for e in entries if after is None or e[0] > after]
        window = entries[offset : offset + limit]
        page = self.store.page(index, partition, limit=limit, offset=offset, after=after, reverse=reverse)
        assert [(r.kind, r.key) for r in page.records] == [(kind, key) for _, key, kind in window]
        assert page.records == [Record(kind, key, *self.model[kind, key]) for _, key, kind in window]

    @rule(
        ops=st.lists(st.tuples(KINDS, KEYS, st.none() | DATA, INDEXES), min_size=1, max_size=4),
        fail=st.booleans(),
    )
    def transaction(self, ops: list[tuple[str, str, dict | None, dict]], fail: bool) -> None:
        """A few writes in one transaction, rolled back when ``fail``."""
        try:
            with self.store.transaction():
                for kind, key, data, index in ops:
                    if data is None:
                        self.store.delete(kind, key)
                    else:
                        self.store.put(kind, key, data, index=index)
                self.store.next_id("s1")
                if fail:
                    raise Boom
        except Boom:
            return
        for kind, key, data, index in ops:
            if data is None:
                self.model.pop((kind, key), None)
            else:
                self.model[kind, key] = (self._version(kind, key) + 1, data, dict(index))
        self.seqs["s1"] = self.seqs.get("s1", 0) + 1

    @precondition(lambda self: bool(self.model))
    @rule()
    def dump_load(self) -> None:
        dumped = self.store.dump()
        self.store.load(dumped)
        assert self.store.dump() == dumped

    @invariant()
    def same_records_and_counts(self) -> None:
        for kind in ("door", "member"):
            expected = [Record(kind, key, *v) for (k, key), v in sorted(self.model.items()) if k == kind]
            assert list(self.store.scan(kind)) == expected
            for key in ("a", "b", "c", "d"):
                assert self.store.exists(kind, key) == ((kind, key) in self.model)
        for index, partition in PARTITIONS:
            expected_count = sum(1 for _, _, idx in self.model.values() if idx.get(index, (None,))[0] == partition)
            assert self.store.count(index, partition) == expected_count
        assert self.store.is_empty() == (not self.model)


@pytest.mark.parametrize("backend", [pytest.param(b, marks=needs_redis) if b == "redis" else b for b in BACKENDS])
def test_state_machine(backend: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10**9))

        class Machine(StoreMachine):
            # A fresh file per example, so examples cannot see each other.
            factory = staticmethod(lambda: make_store(backend, Path(tmp) / f"m{next(counter)}.db"))

        run_state_machine_as_test(
            Machine,
            settings=settings(
                max_examples=60,
                stateful_step_count=25,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
