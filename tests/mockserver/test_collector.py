"""Full collections freeze their survivors, and every Nth one lets the collector see everything again."""

from __future__ import annotations

import gc

from mockserver.collector import ShortCollections


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_survivors_of_a_full_collection_leave_later_ones_and_a_refresh_brings_them_back() -> None:
    collections = ShortCollections(refresh_every=3)
    collections.install()
    try:
        assert collections in gc.callbacks
        frozen_at_start = gc.get_freeze_count()
        assert frozen_at_start > 0
        kept = [_Cycle() for _ in range(1000)]
        gc.collect()  # full collection 1: the survivors, `kept` among them, are frozen
        assert gc.get_freeze_count() >= frozen_at_start + 1000
        gc.collect()  # 2: frozen again
        assert gc.get_freeze_count() >= frozen_at_start + 1000
        gc.collect()  # 3: the refresh, nothing stays frozen
        assert gc.get_freeze_count() == 0
        assert collections.full_collections == 3
        del kept
    finally:
        collections.uninstall()
    assert collections not in gc.callbacks
    assert gc.get_freeze_count() == 0


def test_young_collections_freeze_nothing() -> None:
    collections = ShortCollections()
    gc.callbacks.append(collections)
    try:
        before = gc.get_freeze_count()
        gc.collect(0)
        gc.collect(1)
        assert gc.get_freeze_count() == before
        assert collections.full_collections == 0
    finally:
        gc.callbacks.remove(collections)
