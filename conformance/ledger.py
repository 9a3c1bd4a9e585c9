"""What a run created and deleted on the server, so that it touches only its own things and removes them at the
end."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["Created", "Ledger"]


@dataclass
class Created:
    kind: str
    ident: Any
    parent: Any = None
    body: Any = None
    deleted: bool = False


class Ledger:
    """What this run created (kinds: `vms_code`, `medium`) and what it deleted (also `seam_code`)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], Created] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(kind: str, ident: Any) -> tuple[str, str]:
        return kind, str(ident)

    def add(self, kind: str, ident: Any, *, parent: Any = None, body: Any = None) -> None:
        with self._lock:
            self._items.setdefault(self._key(kind, ident), Created(kind, ident, parent, body))

    def mark_deleted(self, kind: str, ident: Any) -> None:
        with self._lock:
            item = self._items.get(self._key(kind, ident))
            if item is None:
                item = self._items.setdefault(self._key(kind, ident), Created(kind, ident, None, None, True))
            item.deleted = True

    def owns(self, kind: str, ident: Any, parent: Any = None) -> bool:
        item = self._items.get(self._key(kind, ident))
        return item is not None and item.body is not None and (parent is None or str(item.parent) == str(parent))

    def items(self, kind: str, *, live: bool | None = None) -> list[Created]:
        with self._lock:
            return [
                item
                for item in self._items.values()
                if item.kind == kind and item.body is not None and (live is None or item.deleted != live)
            ]

    def deleted(self, kind: str) -> set[Any]:
        """Idents of this kind this run saw deleted (whoever created them)."""
        with self._lock:
            return {item.ident for item in self._items.values() if item.kind == kind and item.deleted}

    def created_count(self) -> int:
        return sum(1 for item in self._items.values() if item.body is not None)
