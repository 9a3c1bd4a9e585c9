"""How a replica's mirror of the Redis building catches up: before every read outside a request, once per request
(`view`), and once per turn of the event loop for the requests that turn handles."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest

from mockserver.store.redis_store import RedisStore
from tests.mockserver.store.test_store_contract import REDIS_URL, needs_redis

pytestmark = needs_redis


@pytest.fixture
def pair() -> Iterator[tuple[RedisStore, RedisStore]]:
    namespace = f"test-views-{uuid.uuid4().hex}"
    mine, other = RedisStore(REDIS_URL, namespace=namespace), RedisStore(REDIS_URL, namespace=namespace)
    yield mine, other
    mine.clear()
    mine.close()
    other.close()


def _counting(store: RedisStore) -> list[str]:
    """Count the revision reads (one per catch-up) the store makes from now on."""
    calls: list[str] = []
    get = store._redis.get

    def counted(name: str) -> object:
        calls.append(name)
        return get(name)

    store._redis.get = counted  # type: ignore[method-assign]
    return calls


def test_outside_a_request_every_read_sees_the_other_replicas_commits(pair: tuple[RedisStore, RedisStore]) -> None:
    mine, other = pair
    assert mine.get("door", "a") is None
    other.put("door", "a", {"v": 1}, index={"by_site": ("s", 1)})
    assert mine.get("door", "a").data == {"v": 1}  # type: ignore[union-attr]
    assert mine.count("by_site", "s") == 1
    other.delete("door", "a")
    assert mine.exists("door", "a") is False


def test_a_view_catches_up_once_at_its_first_read(pair: tuple[RedisStore, RedisStore]) -> None:
    mine, other = pair
    calls = _counting(mine)
    other.put("door", "a", {"v": 1})
    with mine.view():
        assert mine.revision is None  # not caught up yet: nothing may be answered from what was kept
        assert mine.get("door", "a").data == {"v": 1}  # type: ignore[union-attr]
        assert mine.get("door", "b") is None
        assert mine.revision is not None
    assert len(calls) == 1


def test_requests_of_one_turn_of_the_loop_share_a_catch_up_and_the_next_turn_catches_up_again(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    mine, other = pair
    calls = _counting(mine)

    def request() -> dict | None:
        with mine.view():
            record = mine.get("door", "a")
            return None if record is None else record.data

    async def turns() -> list[dict | None]:
        seen = [request(), request(), request()]  # one turn: the first catches up, the others take it
        other.put("door", "a", {"v": 2})  # acknowledged before the next request arrives
        await asyncio.sleep(0)  # the next turn
        seen.append(request())
        return seen

    other.put("door", "a", {"v": 1})
    assert asyncio.run(turns()) == [{"v": 1}, {"v": 1}, {"v": 1}, {"v": 2}]
    assert len(calls) == 2


def test_a_commit_refused_because_another_replica_came_first_keeps_nothing_and_catches_up(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    from mockserver.store.base import CommitConflict

    mine, other = pair
    mine.put("door", "a", {"v": 1})
    with pytest.raises(CommitConflict), mine.transaction():
        assert mine.get("door", "a").data == {"v": 1}  # type: ignore[union-attr]
        other.put("door", "a", {"v": 2})  # commits while this block reads
        mine.put("door", "b", {"seen": 1})
    assert mine.get("door", "b") is None
    assert other.get("door", "b") is None
    assert mine.get("door", "a").data == {"v": 2}  # type: ignore[union-attr]


def test_a_reload_that_other_commits_fall_between_ends_exactly_at_the_last_of_them(
    pair: tuple[RedisStore, RedisStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica reloads everything in short reads; the other replica commits between them (creating, changing and
    deleting records already read, not yet read, and of a new kind); the mirror ends equal to Redis."""
    import mockserver.store.redis_store as redis_store

    mine, other = pair
    with other.transaction():  # a hash past hash-max-listpack-entries is a table, read by HSCAN in chunks
        for n in range(600):
            other.put("door", f"d{n:03d}", {"n": n}, index={"by_site": ("s", n)})
        other.next_id("seq")
    monkeypatch.setattr(redis_store, "RELOAD_CHUNK", 50)
    scan = mine._redis.hscan
    moves = iter(
        [
            lambda: other.put("door", "d000", {"n": 1000}, index={"by_site": ("s", 1000)}),
            lambda: other.delete("door", "d599"),
            lambda: (other.put("member", "m", {"new": True}), other.next_id("seq")),
            lambda: other.put("door", "d600", {"n": 600}),
        ]
    )

    calls = 0

    def interleaved(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        answer = scan(*args, **kwargs)
        next(moves, lambda: None)()
        return answer

    monkeypatch.setattr(mine._redis, "hscan", interleaved)
    mine._reload()
    monkeypatch.undo()
    assert calls >= 4, "the reload read in one go: nothing fell between its reads"
    assert mine._mirror.dump() == other.dump()
    assert mine.count("by_site", "s") == 599


def test_views_entered_in_one_turn_share_one_fetch_and_never_block_the_loop(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    mine, other = pair
    blocking = _counting(mine)
    fetches: list[int] = []
    fetch = mine._fetch

    async def counted(loop: asyncio.AbstractEventLoop, since: int) -> tuple[int, list]:
        fetches.append(since)
        return await fetch(loop, since)

    mine._fetch = counted  # type: ignore[method-assign]

    async def request() -> dict | None:
        async with mine.view():
            record = mine.get("door", "a")
            return None if record is None else record.data

    async def requests() -> tuple[list[dict | None], dict | None]:
        together = await asyncio.gather(request(), request(), request())  # three requests of one turn
        other.put("door", "a", {"v": 2})
        return together, await request()

    other.put("door", "a", {"v": 1})
    assert asyncio.run(requests()) == ([{"v": 1}] * 3, {"v": 2})
    assert len(fetches) == 2
    assert blocking == []


def test_an_idle_replica_keeps_up_with_the_others_commits_without_a_request() -> None:
    from mockserver.http.middleware import KEEP_UP_S
    from mockserver.testing import start_mock

    namespace = f"test-keep-up-{uuid.uuid4().hex}"
    state = f"{REDIS_URL}?namespace={namespace}"
    with start_mock(seed=0, state_path=state) as busy, start_mock(seed=0, state_path=state) as idle:
        with idle.client("seam") as seam:  # one request: the idle replica's loop is serving
            assert seam.get("/health").status_code == 200
        mine = idle.runtime.building.store
        theirs = busy.runtime.building.store
        assert isinstance(mine, RedisStore) and isinstance(theirs, RedisStore)
        before = mine._rev
        for number in range(5):
            theirs.put("door", f"kept-{number}", {"v": number})
        deadline = time.monotonic() + 20 * KEEP_UP_S
        while mine._rev != theirs._rev and time.monotonic() < deadline:
            time.sleep(KEEP_UP_S / 2)
        assert mine._rev == theirs._rev > before
        assert mine._mirror.get("door", "kept-4") is not None  # read from the mirror itself: no catch-up here
    cleanup = RedisStore(REDIS_URL, namespace=namespace)
    cleanup.clear()
    cleanup.close()
