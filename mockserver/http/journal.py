"""The request journal: a bounded ring of recent requests and responses, credentials redacted.

Redaction happens as an exchange is recorded, before it is kept (in memory or in Redis, where whoever reads the
Redis reads the entries): secret headers lose their values; so do body fields, query parameters and redirect
parameters named like a credential, at any nesting and whatever the letter case or escaping; the control API's
credential and state documents are not kept at all. A body is kept up to `BODY_LIMIT` bytes after redaction.
"""

from __future__ import annotations

import collections
import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..redaction import REDACTED, redact_header_list, redact_headers, redact_query, redact_text_body

REDACTED_BYTES = REDACTED.encode()

#: control API operations whose bodies are made of credentials (every token, key and password; the state's records)
WITHHELD = frozenset({"getCredentials", "takeSnapshot", "restoreSnapshot"})
#: bytes of each body the journal keeps
BODY_LIMIT = 16_384


def redact_body(body: bytes) -> bytes:
    """A body as the journal keeps it: secret fields' values replaced, at most `BODY_LIMIT` bytes."""
    return redact_text_body(body)[:BODY_LIMIT]


def redacted(entry: JournalEntry) -> JournalEntry:
    """``entry`` as the journal keeps it."""
    return _entry(_redacted_row(entry))


#: the API of each path's first segment
API_PREFIXES = {"magicline": "magicline", "seam": "seam", "vms": "vms", "_mock": "control"}


@dataclass
class JournalEntry:
    """One exchange: bytes and header lists, as recorded (see `redacted` for how the journal keeps them), decoded
    only when someone reads the journal."""

    id: int
    at: datetime
    method: str
    path: str
    query: bytes
    status: int
    duration_ms: float
    operation_id: str | None = None
    request_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    request_body: bytes = b""
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    response_body: bytes = b""

    @property
    def api(self) -> str:
        return API_PREFIXES.get(self.path.split("/", 2)[1] if self.path.count("/") else "", "other")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "api": self.api,
            "operation_id": self.operation_id,
            "method": self.method,
            "path": self.path,
            "query": self.query.decode("latin-1"),
            "status": self.status,
            "duration_ms": self.duration_ms,
            "request_headers": redact_headers(self.request_headers),
            "request_body": _text(self.request_body),
            "response_headers": redact_headers(self.response_headers),
            "response_body": _text(self.response_body),
        }


def _text(body: bytes) -> str | None:
    return body.decode("utf-8", errors="replace") if body else None


#: a kept entry: JournalEntry's fields in order, header lists as tuples
_Row = tuple[Any, ...]


def _redacted_row(entry: JournalEntry) -> _Row:
    """``entry`` redacted, as a plain tuple of bytes, str, numbers and tuples. The cyclic collector stops tracking
    such a tuple at its first collections; an entry object and its header lists would stay tracked, be promoted (an
    entry lives about a thousand requests) and make every full collection walk the whole journal."""
    withheld = entry.operation_id in WITHHELD and entry.path.startswith("/_mock/")
    return (
        entry.id,
        entry.at,
        entry.method,
        entry.path,
        redact_query(entry.query),
        entry.status,
        entry.duration_ms,
        entry.operation_id,
        tuple(redact_header_list(entry.request_headers)),
        REDACTED_BYTES if withheld and entry.request_body else redact_body(entry.request_body),
        tuple(redact_header_list(entry.response_headers)),
        REDACTED_BYTES if withheld and entry.response_body else redact_body(entry.response_body),
    )


def _entry(row: _Row) -> JournalEntry:
    fields = list(row)
    fields[8], fields[10] = list(row[8]), list(row[10])
    return JournalEntry(*fields)


class Journal:
    """Thread-safe ring buffer; ``size`` 0 switches recording off."""

    def __init__(self, size: int = 1000) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._entries: collections.deque[_Row] = collections.deque(maxlen=max(size, 1))
        self.size = size

    def resize(self, size: int) -> None:
        with self._lock:
            self.size = size
            self._entries = collections.deque(self._entries, maxlen=max(size, 1))

    def next_id(self) -> int:
        return next(self._ids)

    def add(self, entry: JournalEntry) -> None:
        """Keep ``entry``, redacted (see `redacted`)."""
        if self.size <= 0:
            return
        row = _redacted_row(entry)
        with self._lock:
            self._entries.append(row)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def close(self) -> None:
        """Release what the journal holds open: nothing in memory (`RedisJournal` sends what it holds and closes
        its connection)."""

    def query(
        self,
        *,
        api: str | None = None,
        operation_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        limit: int = 100,
    ) -> list[JournalEntry]:
        entries = self._all()
        matched = [
            e
            for e in entries
            if (api is None or e.api == api)
            and (operation_id is None or e.operation_id == operation_id)
            and (method is None or e.method == method.upper())
            and (path is None or e.path.startswith(path))
            and (status is None or e.status == status)
        ]
        return matched[-limit:]

    def _all(self) -> list[JournalEntry]:
        """Every kept entry, oldest first."""
        with self._lock:
            rows = list(self._entries)
        return [_entry(row) for row in rows]
