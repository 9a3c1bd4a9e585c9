"""Exchanges as a HAR 1.2 file (a browser's network panel opens it), credentials redacted everywhere: secret
headers, and passwords, tokens and OAuth codes in bodies, query strings and `Location` headers.

Each entry also names its API (`_api`) and operation (`_operation`), so `mockserver fixtures from-har` knows what
each answer describes.
"""

from __future__ import annotations

import json
import pathlib
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import parse_qsl

from mockserver.contracts import load_contract
from mockserver.redaction import SECRET_FIELDS, redact_header_list, redact_query, redact_text_body

from .proxy import HOP_BY_HOP, Exchange

__all__ = ["har_document", "write_har"]


def _headers(headers: list[tuple[str, str]]) -> list[dict[str, str]]:
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    return [{"name": k.decode("latin-1"), "value": v.decode("latin-1")} for k, v in redact_header_list(raw)]


#: in an answer, `code` is a door code (VMS), the recording's business; an OAuth code only travels in a request
#: body, a query string or a redirect, which keep every secret field redacted
ANSWER_SECRETS = SECRET_FIELDS - {"code"}


def _text(body: bytes, fields: frozenset[str] = SECRET_FIELDS) -> str:
    return redact_text_body(body, fields).decode("utf-8", "replace")


def entry(exchange: Exchange, api: str) -> dict[str, Any]:
    query = redact_query(exchange.query.encode("latin-1")).decode("latin-1")
    url = exchange.upstream_url.split("?", 1)[0] + (f"?{query}" if query else "")
    operation = load_contract(api).find(exchange.method, exchange.path)
    request_type = next((v for k, v in exchange.request_headers if k.lower() == "content-type"), "")
    response_type = exchange.response_header("content-type") or ""
    body = exchange.decoded_response()
    milliseconds = round(exchange.seconds * 1000, 3)
    record: dict[str, Any] = {
        "startedDateTime": exchange.started.isoformat(),
        "time": milliseconds,
        "request": {
            "method": exchange.method,
            "url": url,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": _headers([(k, v) for k, v in exchange.request_headers if k.lower() not in HOP_BY_HOP]),
            "queryString": [{"name": k, "value": v} for k, v in parse_qsl(query, keep_blank_values=True)],
            "headersSize": -1,
            "bodySize": len(exchange.request_body),
        },
        "response": {
            "status": exchange.status,
            "statusText": _reason(exchange.status),
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": _headers(exchange.response_headers),
            "content": {"size": len(body), "mimeType": response_type, "text": _text(body, ANSWER_SECRETS)},
            "redirectURL": next(
                (h["value"] for h in _headers(exchange.response_headers) if h["name"] == "location"), ""
            ),
            "headersSize": -1,
            "bodySize": len(exchange.response_body),
        },
        "cache": {},
        "timings": {"send": 0, "wait": milliseconds, "receive": 0},
        "_api": api,
        "_operation": operation.operation_id if operation else None,
    }
    if exchange.request_body:
        record["request"]["postData"] = {"mimeType": request_type, "text": _text(exchange.request_body)}
    return record


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def har_document(exchanges: list[Exchange], api: str) -> dict[str, Any]:
    try:
        release = version("doorcodes-contracts")
    except PackageNotFoundError:
        release = "0"
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "conformance proxy", "version": release},
            "entries": [entry(exchange, api) for exchange in exchanges],
        }
    }


def write_har(path: str | pathlib.Path, exchanges: list[Exchange], api: str) -> None:
    pathlib.Path(path).write_text(json.dumps(har_document(exchanges, api), indent=1) + "\n", encoding="utf-8")
