"""State stores: where the simulated building keeps its state (see `base` for the model)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from .base import Page, Record, Store, VersionConflict
from .memory import MemoryStore
from .sqlite import SqliteStore

__all__ = ["MemoryStore", "Page", "Record", "SqliteStore", "Store", "VersionConflict", "open_store"]


def open_store(path: str | None) -> Store:
    """A `MemoryStore` for None; a `RedisStore` for a ``redis://`` or ``rediss://`` URL (shared by every replica
    that opens it); else a `SqliteStore` on the file at ``path`` (kept across restarts)."""
    if path is None:
        return MemoryStore()
    if path.startswith(("redis://", "rediss://", "unix://")):
        try:
            from .redis_store import RedisStore
        except ImportError as exc:  # the redis client is an optional extra
            raise RuntimeError("a Redis state needs the redis extra: pip install 'doorcodes-contracts[redis]'") from exc
        # Our own query parameter: several buildings (or test runs) can share one Redis database.
        parts = urlsplit(path)
        query = parse_qs(parts.query)
        namespace = query.pop("namespace", ["doorcodes"])[0]
        url = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        return RedisStore(url, namespace=namespace)
    return SqliteStore(path)
