"""The request journal: a bounded ring of recent requests and responses, credentials redacted.

Redaction happens as an exchange is recorded, before it is kept (in memory or in Redis, where whoever reads the
Redis reads the entries): secret headers lose their values; so do body fields, query parameters and redirect
parameters named like a credential, at any nesting and whatever the letter case or escaping; the control API's
credential and state documents are not kept at all. A body is kept up to `BODY_LIMIT` bytes after redaction.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

#: headers whose values never reach the journal
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-mock-control-token", "cookie", "set-cookie"})
#: body fields and query parameters whose values never reach the journal (compared in lowercase; ``token`` is the
#: control token a browser gives the panel once, in its address)
SECRET_FIELDS = frozenset({"password", "client_secret", "access_token", "code", "api_key", "session_id", "token"})
#: control API operations whose bodies are made of credentials (every token, key and password; the state's records)
WITHHELD = frozenset({"getCredentials", "takeSnapshot", "restoreSnapshot"})
#: bytes of each body the journal keeps
BODY_LIMIT = 16_384
REDACTED = "***"
REDACTED_BYTES = REDACTED.encode()
_SECRET_HEADER_NAMES = frozenset(name.encode() for name in SECRET_HEADERS)

#: a body holding none of these (in lowercase) names no secret, and is kept as it is
_MARKERS = (*(name.encode() for name in SECRET_FIELDS), b"\\u", b"%")
_NAMES = "|".join(sorted(SECRET_FIELDS))
#: in text that is not JSON nor a form (cut off at the kept size, or malformed): a secret's JSON value, to its end
_JSON_VALUE = re.compile(rf'("(?:{_NAMES})"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}}\]\s]*)', re.IGNORECASE)
#: ... and a secret's form value
_FORM_VALUE = re.compile(rf"((?:^|[&?;\s])(?:{_NAMES})=)[^&\s]*", re.IGNORECASE)
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def redact_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Headers by lowercase name, as the journal shows them, secret values redacted."""
    result: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        result[name] = REDACTED if name in SECRET_HEADERS else raw_value.decode("latin-1")
    return result


def _kept_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers as the journal keeps them: secret values replaced, a redirect's secret parameters too."""
    kept = []
    for name, value in headers:
        # ASGI names headers in lowercase bytes, requests and responses alike.
        if name in _SECRET_HEADER_NAMES:
            value = REDACTED_BYTES
        elif name == b"location" and b"?" in value:
            # An OAuth redirect carries the authorization code, which anyone could exchange for a token.
            target, _, query = value.partition(b"?")
            value = target + b"?" + redact_query(query)
        kept.append((name, value))
    return kept


@functools.lru_cache(maxsize=64)
def redact_query(query: bytes) -> bytes:
    """A query string with the values of secret parameters replaced (as sent when it names none). Remembered
    for the last few: clients send the same query strings again and again."""
    if not query or not any(marker in query.lower() for marker in _MARKERS):
        return query
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    return urlencode([(k, REDACTED if k.lower() in SECRET_FIELDS else v) for k, v in pairs], safe="*").encode("latin-1")


def _redact_data(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: REDACTED if k.lower() in SECRET_FIELDS else _redact_data(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_redact_data(item) for item in data]
    return data


def _json(text: str) -> Any:
    """The JSON document ``text`` holds, or None. orjson reads most; the json module what orjson refuses and
    Python still reads (integers beyond 64 bits, nesting past 255)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return None


def _dumps(data: Any) -> str:
    try:
        return orjson.dumps(data).decode()
    except orjson.JSONEncodeError:
        return json.dumps(data, ensure_ascii=False)


@functools.lru_cache(maxsize=32)
def redact_body(body: bytes) -> bytes:
    """A body as the journal keeps it: secret fields' values replaced, at most `BODY_LIMIT` bytes.

    Remembered for the last few bodies: an answer served again from the read cache is the same bytes object,
    redacted once."""
    if not body or not any(marker in body.lower() for marker in _MARKERS):
        return body[:BODY_LIMIT]
    text = body.decode("utf-8", errors="replace")
    data = _json(text)
    if data is not None:
        text = _dumps(_redact_data(data))
    elif "=" in text and not text.lstrip().startswith(("{", "[")):
        pairs = parse_qsl(text, keep_blank_values=True)
        text = urlencode([(k, REDACTED if k.lower() in SECRET_FIELDS else v) for k, v in pairs], safe="*")
    else:
        # Not JSON (cut off at the kept size, or malformed): its secrets' values, found in the text itself.
        text = _ESCAPE.sub(lambda found: chr(int(found[1], 16)), text)
        text = _JSON_VALUE.sub(rf'\1"{REDACTED}"', text)
        text = _FORM_VALUE.sub(rf"\1{REDACTED}", text)
    # JSON escapes may spell lone surrogates, which are no UTF-8: kept as U+FFFD.
    return text.encode("utf-8", errors="replace")[:BODY_LIMIT]


def redacted(entry: JournalEntry) -> JournalEntry:
    """``entry`` as the journal keeps it."""
    withheld = entry.operation_id in WITHHELD and entry.path.startswith("/_mock/")
    return JournalEntry(
        entry.id,
        entry.at,
        entry.method,
        entry.path,
        redact_query(entry.query),
        entry.status,
        entry.duration_ms,
        entry.operation_id,
        _kept_headers(entry.request_headers),
        REDACTED_BYTES if withheld and entry.request_body else redact_body(entry.request_body),
        _kept_headers(entry.response_headers),
        REDACTED_BYTES if withheld and entry.response_body else redact_body(entry.response_body),
    )


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
        """Keep ``entry``, redacted (see `redacted`)."""
        if self.size <= 0:
            return
        row = _row(redacted(entry))
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
