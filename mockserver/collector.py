"""Keep the cyclic garbage collector's full collections short while the building grows.

A full collection walks every tracked object, so with a building that grows under writes (each new code adds
records, index entries and journal lines) its pauses grow too, and every open connection waits: about 60 ms per
full collection after a few thousand creates, which is what a load test's p99 shows. Freezing what survived a full
collection moves it out of later ones, so each walks only what was made since the last. Cycles that die after being
frozen would stay, so every ``refresh_every``-th full collection unfreezes first and the next one sees everything.
"""

from __future__ import annotations

import gc
from typing import Any


class ShortCollections:
    def __init__(self, refresh_every: int = 50) -> None:
        self.refresh_every = refresh_every
        self.full_collections = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info["generation"] != 2:
            return
        self.full_collections += 1
        if self.full_collections % self.refresh_every == 0:
            gc.unfreeze()
        else:
            gc.freeze()

    def install(self) -> None:
        """Freeze what exists now (start-up's contracts, validators, the loaded building) and every later
        collection's survivors."""
        gc.collect()
        gc.freeze()
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def uninstall(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
        gc.unfreeze()
