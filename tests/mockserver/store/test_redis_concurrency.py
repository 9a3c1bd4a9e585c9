"""Two processes on one Redis store: counters, compare-and-set and transactions stay atomic across them."""

from __future__ import annotations

import multiprocessing
import uuid

import pytest

from mockserver.store import VersionConflict, open_store
from mockserver.store.base import CommitConflict
from tests.mockserver.store.test_store_contract import REDIS_URL, needs_redis

pytestmark = needs_redis

ROUNDS = 150


def _worker(url: str, namespace: str, results: multiprocessing.Queue) -> None:
    from mockserver.store.redis_store import RedisStore

    store = RedisStore(url, namespace=namespace)
    ids = [store.next_id("code", start=1000) for _ in range(ROUNDS)]
    conflicts = 0
    for _ in range(ROUNDS):
        while True:
            record = store.get("counter", "c")
            assert record is not None
            try:
                store.put("counter", "c", {"n": record.data["n"] + 1}, expected_version=record.version)
                break
            except VersionConflict:
                conflicts += 1
    refused = 0
    for step in range(ROUNDS // 3):
        # A read-modify-write of two records inside one transaction: another process never sees them differ,
        # and never interleaves its own increment between the read and the write. The commit is optimistic:
        # when the other process committed first, none of the block is kept, and it runs again.
        while True:
            try:
                with store.transaction():
                    left = store.get("pair", "left")
                    right = store.get("pair", "right")
                    assert left is not None and right is not None and left.data == right.data
                    store.put("pair", "left", {"n": left.data["n"] + 1})
                    store.put("pair", "right", {"n": right.data["n"] + 1}, index={"by_n": ("all", step)})
                break
            except CommitConflict:
                refused += 1
    results.put((ids, conflicts + refused))
    store.close()


def test_two_processes_never_share_an_id_lose_an_increment_or_see_half_a_transaction() -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    store = open_store(REDIS_URL)
    from mockserver.store.redis_store import RedisStore

    assert isinstance(store, RedisStore)
    store.close()
    store = RedisStore(REDIS_URL, namespace=namespace)
    try:
        store.put("counter", "c", {"n": 0})
        store.put("pair", "left", {"n": 0})
        store.put("pair", "right", {"n": 0})
        context = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue = context.Queue()
        workers = [context.Process(target=_worker, args=(REDIS_URL, namespace, results)) for _ in range(2)]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
            assert worker.exitcode == 0
        ids = [i for got, _ in outcomes for i in got]
        assert len(ids) == len(set(ids)) == 2 * ROUNDS
        assert sorted(ids) == list(range(1000, 1000 + 2 * ROUNDS))
        assert store.get("counter", "c").data == {"n": 2 * ROUNDS}  # type: ignore[union-attr]
        left, right = store.get("pair", "left"), store.get("pair", "right")
        assert left is not None and right is not None
        assert left.data == right.data == {"n": 2 * (ROUNDS // 3)}
    finally:
        store.clear()
        store.close()


def test_a_second_store_on_the_same_namespace_sees_every_acknowledged_write() -> None:
    """For Redis a restart is another process opening the same URL: nothing acknowledged is lost."""
    from mockserver.store.redis_store import RedisStore

    namespace = f"test-{uuid.uuid4().hex}"
    first = RedisStore(REDIS_URL, namespace=namespace)
    try:
        first.put("door", "a", {"v": 1}, index={"by_site": ("s", 5)})
        first.next_id("seq")
        with pytest.raises(RuntimeError), first.transaction():
            first.put("door", "b", {"v": 2})
            raise RuntimeError("rolled back")
        second = RedisStore(REDIS_URL, namespace=namespace)
        assert second.dump() == first.dump()
        assert second.get("door", "b") is None
        assert [r.key for r in second.page("by_site", "s", limit=5).records] == ["a"]
        assert second.next_id("seq") == 2
        second.close()
    finally:
        first.clear()
        first.close()
