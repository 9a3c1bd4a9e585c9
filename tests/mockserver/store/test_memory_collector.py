"""What the memory store keeps must not weigh on the cyclic garbage collector: stored records drop out of its
lists within two young collections, and a kind's map stays tracked (frozen with the building) instead of turning
young again on every put. Both showed under load as 10 to 25 ms full collections that every connection waited for."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from mockserver.store.memory import MemoryStore


@pytest.fixture
def collector_off() -> Iterator[None]:
    # Only the collections this test asks for may run, so that each step sees what one collection does.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def test_records_leave_the_collector_within_two_young_collections(collector_off: None) -> None:
    store = MemoryStore()
    store.put("code", "1", {"title": "guest", "tags": ["a"]}, index={"by_intercom": ("180", 1), "due": ("all", 99)})
    store.put("code", "2", {"title": "plain"})
    gc.collect(0)
    gc.collect(1)
    records = store._kinds["code"]
    assert not gc.is_tracked(records["1"])
    assert not gc.is_tracked(records["2"])
    # ...and they read back whole, each read a fresh copy.
    first = store.get("code", "1")
    assert first is not None
    assert first.data == {"title": "guest", "tags": ["a"]}
    assert first.index == {"by_intercom": ("180", 1), "due": ("all", 99)}
    first.index["by_intercom"] = ("999", 0)
    first.data["tags"].append("b")
    assert store.get("code", "1") == first._replace(
        data={"title": "guest", "tags": ["a"]}, index={"by_intercom": ("180", 1), "due": ("all", 99)}
    )


def test_a_kinds_map_stays_tracked_after_a_full_collection_and_more_puts(collector_off: None) -> None:
    store = MemoryStore()
    for number in range(100):
        store.put("code", str(number), {"n": number}, index={"all": ("all", number)})
    gc.collect(0)
    gc.collect(1)  # the records are untracked now...
    gc.collect()  # ...so this full collection would untrack an exact dict holding them
    records = store._kinds["code"]
    assert gc.is_tracked(records)
    store.put("code", "new", {"n": -1}, index={"all": ("all", -1)})
    # An exact dict would have been untracked by the full collection and tracked again as a young object by this
    # put: then every young collection would walk its entries.
    assert gc.is_tracked(records)
    assert not any(obj is records for obj in gc.get_objects(0))
