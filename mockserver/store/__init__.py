"""State stores: where the simulated building keeps its state (see `base` for the model)."""

from __future__ import annotations

from .base import Page, Record, Store, VersionConflict
from .memory import MemoryStore
from .sqlite import SqliteStore

__all__ = ["MemoryStore", "Page", "Record", "SqliteStore", "Store", "VersionConflict", "open_store"]


def open_store(path: str | None) -> Store:
    """A `MemoryStore` for None, else a `SqliteStore` on the file at ``path`` (kept across restarts)."""
    return MemoryStore() if path is None else SqliteStore(path)
