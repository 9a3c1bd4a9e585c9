"""Credentials out of what is kept or shown of an exchange: the mock's journal, the proxy's recordings.

Secret headers lose their values; so do body fields, query parameters and redirect parameters named like a
credential, at any nesting and whatever the letter case or escaping.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

__all__ = [
    "REDACTED",
    "SECRET_FIELDS",
    "SECRET_HEADERS",
    "redact_header_list",
    "redact_headers",
    "redact_query",
    "redact_text_body",
]

#: headers whose values are credentials
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-mock-control-token", "cookie", "set-cookie"})
#: body fields and query parameters whose values are credentials (compared in lowercase; ``token`` is the control
#: token a browser gives the panel once, in its address); the credential headers' names count too, as the control
#: API's `headers` object (what to send) carries them
SECRET_FIELDS = frozenset(
    {"password", "client_secret", "access_token", "code", "api_key", "session_id", "token", *SECRET_HEADERS}
)
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
    """Headers by lowercase name, secret values redacted."""
    result: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        result[name] = REDACTED if name in SECRET_HEADERS else raw_value.decode("latin-1")
    return result


def redact_header_list(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers with secret values replaced, a redirect's secret parameters too."""
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


def _redact_data(data: Any, fields: frozenset[str] = SECRET_FIELDS) -> Any:
    if isinstance(data, dict):
        return {k: REDACTED if k.lower() in fields else _redact_data(v, fields) for k, v in data.items()}
    if isinstance(data, list):
        return [_redact_data(item, fields) for item in data]
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
def redact_text_body(body: bytes, fields: frozenset[str] = SECRET_FIELDS) -> bytes:
    """A body with the values of secret ``fields`` replaced, JSON, form or neither (cut off or malformed), whole.

    Remembered for the last few bodies: an answer served again from the read cache is the same bytes object,
    redacted once."""
    if not body or not any(marker in body.lower() for marker in _MARKERS):
        return body
    text = body.decode("utf-8", errors="replace")
    data = _json(text)
    if data is not None:
        text = _dumps(_redact_data(data, fields))
    elif "=" in text and not text.lstrip().startswith(("{", "[")):
        pairs = parse_qsl(text, keep_blank_values=True)
        text = urlencode([(k, REDACTED if k.lower() in fields else v) for k, v in pairs], safe="*")
    else:
        # Not JSON (cut off at the kept size, or malformed): every secret's value, found in the text itself.
        text = _ESCAPE.sub(lambda found: chr(int(found[1], 16)), text)
        text = _JSON_VALUE.sub(rf'\1"{REDACTED}"', text)
        text = _FORM_VALUE.sub(rf"\1{REDACTED}", text)
    # JSON escapes may spell lone surrogates, which are no UTF-8: kept as U+FFFD.
    return text.encode("utf-8", errors="replace")
