"""The request journal: a bounded ring of recent requests and responses, credentials redacted."""

from __future__ import annotations

import collections
import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: headers whose values never reach the journal
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-mock-control-token", "cookie", "set-cookie"})
#: body fields whose values never reach the journal
SECRET_FIELDS = ("password", "client_secret", "access_token", "code", "api_key", "session_id")
BODY_LIMIT = 16_384


def redact_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        result[name] = "***" if name in SECRET_HEADERS else raw_value.decode("latin-1")
    return result


def redact_body(body: bytes) -> str | None:
    if not body:
        return None
    text = body[:BODY_LIMIT].decode("utf-8", errors="replace")
    try:
        import json

        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for name in SECRET_FIELDS:
            if name in data:
                data[name] = "***"
        return json.dumps(data, ensure_ascii=False)
    if ("=" in text and "&" in text) or text.count("=") == 1:
        from urllib.parse import parse_qsl, urlencode

        pairs = [(k, "***" if k in SECRET_FIELDS else v) for k, v in parse_qsl(text, keep_blank_values=True)]
        if pairs:
            return urlencode(pairs)
    return text


#: the API of each path's first segment
API_PREFIXES = {"magicline": "magicline", "seam": "seam", "vms": "vms", "_mock": "control"}


@dataclass
class JournalEntry:
    """One exchange as recorded: raw bytes and header lists, decoded and redacted only when someone reads the
    journal, so recording costs a request almost nothing."""

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
            "request_body": redact_body(self.request_body),
            "response_headers": redact_headers(self.response_headers),
            "response_body": redact_body(self.response_body),
        }


#: a kept entry: JournalEntry's fields in order, header lists as tuples
_Row = tuple[Any, ...]


def _row(entry: JournalEntry) -> _Row:
    """An entry as a plain tuple of bytes, str, numbers and tuples. The cyclic collector stops tracking such a
    tuple at its first collections; an entry object and its header lists would stay tracked, be promoted (an
    entry lives about a thousand requests) and make every full collection walk the whole journal."""
    return (
        entry.id,
        entry.at,
        entry.method,
        entry.path,
        entry.query,
        entry.status,
        entry.duration_ms,
        entry.operation_id,
        tuple(entry.request_headers),
        entry.request_body,
        tuple(entry.response_headers),
        entry.response_body,
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
        if self.size <= 0:
            return
        row = _row(entry)
        with self._lock:
            self._entries.append(row)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

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
