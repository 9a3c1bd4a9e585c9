"""Which commits of two replicas conflict: a block is refused only when a commit since it began touched what it read
(records, counters, partitions it paged or counted, entries at or below the lowest key it read), and ids drawn with
`unique_id` never make two blocks conflict."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from mockserver.store.base import CommitConflict
from mockserver.store.redis_store import ID_BLOCK, RedisStore
from tests.mockserver.store.test_store_contract import REDIS_URL, needs_redis

pytestmark = needs_redis


@pytest.fixture
def pair() -> Iterator[tuple[RedisStore, RedisStore]]:
    namespace = f"test-commits-{uuid.uuid4().hex}"
    mine, other = RedisStore(REDIS_URL, namespace=namespace), RedisStore(REDIS_URL, namespace=namespace)
    mine.put("door", "a", {"v": 1}, index={"by_site": ("s", 10)})
    mine.put("door", "b", {"v": 1}, index={"by_site": ("s", 20)})
    yield mine, other
    mine.clear()
    mine.close()
    other.close()


def _commits(mine: RedisStore, read: Callable[[], object], other_writes: Callable[[], object]) -> bool:
    """Run a block on ``mine`` that reads, lets the other replica commit, then writes; True when it was kept."""
    try:
        with mine.transaction():
            read()
            other_writes()
            mine.put("door", "mine", {"v": 1})
    except CommitConflict:
        kept = mine.get("door", "mine")
        assert kept is None or kept.data != {"v": 1}  # nothing of the block is left
        return False
    return True


def test_a_commit_that_touched_nothing_the_block_read_lets_it_through_and_is_applied_after_it(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    mine, other = pair
    kept = _commits(
        mine,
        lambda: (mine.get("door", "a"), mine.exists("door", "c"), mine.count("by_site", "elsewhere")),
        lambda: other.put("door", "z", {"v": 2}, index={"by_site": ("s", 30)}),
    )
    assert kept
    # The mirror holds the other replica's commit too, in the state Redis holds.
    assert mine.get("door", "z").data == {"v": 2}  # type: ignore[union-attr]
    assert mine.count("by_site", "s") == 3
    assert mine._mirror.dump() == other.dump()


@pytest.mark.parametrize(
    ("read", "write"),
    [
        ("get a", "put a"),
        ("exists c (absent)", "put c"),
        ("get a", "delete a"),
        ("page s", "put z in s"),
        ("count s", "move b out of s"),
        ("lowest s (10)", "put z in s at 5"),
        ("lowest s (10)", "delete a (the lowest)"),
        ("lowest t (empty)", "put z in t"),
        ("next_id n", "next_id n"),
        ("scan door", "put z"),
        ("nothing", "put mine"),  # a record the block writes counts as read
    ],
)
def test_a_commit_that_touched_what_the_block_read_refuses_it(
    pair: tuple[RedisStore, RedisStore], read: str, write: str
) -> None:
    mine, other = pair
    reads: dict[str, Callable[[], object]] = {
        "get a": lambda: mine.get("door", "a"),
        "exists c (absent)": lambda: mine.exists("door", "c"),
        "page s": lambda: mine.page("by_site", "s", limit=1),
        "count s": lambda: mine.count("by_site", "s"),
        "lowest s (10)": lambda: mine.lowest("by_site", "s"),
        "lowest t (empty)": lambda: mine.lowest("by_site", "t"),
        "next_id n": lambda: mine.next_id("n"),
        "scan door": lambda: list(mine.scan("door")),
        "nothing": lambda: None,
    }
    writes: dict[str, Callable[[], object]] = {
        "put a": lambda: other.put("door", "a", {"v": 2}, index={"by_site": ("s", 10)}),
        "put c": lambda: other.put("door", "c", {"v": 2}),
        "delete a": lambda: other.delete("door", "a"),
        "put z in s": lambda: other.put("door", "z", {"v": 2}, index={"by_site": ("s", 30)}),
        "move b out of s": lambda: other.put("door", "b", {"v": 2}, index={"by_site": ("u", 20)}),
        "put z in s at 5": lambda: other.put("door", "z", {"v": 2}, index={"by_site": ("s", 5)}),
        "delete a (the lowest)": lambda: other.delete("door", "a"),
        "put z in t": lambda: other.put("door", "z", {"v": 2}, index={"by_site": ("t", 99)}),
        "next_id n": lambda: other.next_id("n"),
        "put z": lambda: other.put("door", "z", {"v": 2}),
        "put mine": lambda: other.put("door", "mine", {"v": 2}),
    }
    assert not _commits(mine, reads[read], writes[write])
    # Refused, the block runs again on the newer state and is kept.
    assert _commits(mine, reads[read], lambda: None)


def test_entries_above_the_lowest_key_read_do_not_conflict(pair: tuple[RedisStore, RedisStore]) -> None:
    """What the building does before every operation (is anything due?) must not make creates conflict."""
    mine, other = pair
    assert _commits(
        mine,
        lambda: mine.lowest("by_site", "s"),
        lambda: other.put("door", "z", {"v": 2}, index={"by_site": ("s", 11)}),
    )


def test_unique_ids_of_one_replica_follow_each_other_across_blocks_and_rollbacks(
    pair: tuple[RedisStore, RedisStore],
) -> None:
    mine, _ = pair
    drawn = []
    for step in range(ID_BLOCK + 10):
        with mine.transaction():
            drawn.append(mine.unique_id("code", start=1000))
        if step % 7 == 0:  # a block that fails gives its id back
            with pytest.raises(RuntimeError), mine.transaction():
                mine.unique_id("code", start=1000)
                raise RuntimeError
    assert drawn == list(range(1000, 1000 + ID_BLOCK + 10))


def test_a_failed_block_that_crossed_into_a_new_block_gives_both_back(pair: tuple[RedisStore, RedisStore]) -> None:
    mine, _ = pair
    with mine.transaction():
        first = [mine.unique_id("code") for _ in range(ID_BLOCK - 2)]
    with pytest.raises(RuntimeError), mine.transaction():
        [mine.unique_id("code") for _ in range(5)]
        raise RuntimeError
    with mine.transaction():
        after = [mine.unique_id("code") for _ in range(5)]
    assert first + after == list(range(1, ID_BLOCK + 4))


def test_two_replicas_drawing_ids_never_conflict_and_never_share_one(pair: tuple[RedisStore, RedisStore]) -> None:
    mine, other = pair
    ids = []
    for _ in range(2 * ID_BLOCK):
        with mine.transaction():
            code = mine.unique_id("code", start=1000)
            ids.append(code)
            # The other replica creates one in between, on the state this block read: no refusal.
            with other.transaction():
                ids.append(theirs := other.unique_id("code", start=1000))
                other.put("code", str(theirs), {"id": theirs}, expected_version=0)
            mine.put("code", str(code), {"id": code}, expected_version=0)
    assert len(ids) == len(set(ids)) == 4 * ID_BLOCK
    assert mine.dump() == other.dump()


def test_a_dump_holds_the_counters_other_replicas_drew_blocks_from(pair: tuple[RedisStore, RedisStore]) -> None:
    mine, other = pair
    with other.transaction():
        drawn = other.unique_id("code", start=1000)
    assert mine.dump()["sequences"]["code"] >= drawn


def test_a_reset_starts_the_ids_again(pair: tuple[RedisStore, RedisStore]) -> None:
    mine, other = pair
    with other.transaction():
        other.unique_id("code", start=1000)
    with mine.transaction():
        mine.unique_id("code", start=1000)
    with mine.transaction():
        mine.clear()
        assert mine.unique_id("code", start=1000) == 1000  # drawn from the state being written
    with mine.transaction():
        assert mine.unique_id("code", start=1000) == 1001
    with other.transaction():
        assert other.unique_id("code", start=1000) > 1001
