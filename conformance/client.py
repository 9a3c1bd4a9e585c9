"""The HTTP client of our own scenario steps and state machines.

Every request goes through the run's `Throttle`, honours 429 (`Retry-After`, else exponential back-off) and 503,
learns the server's clock from its `Date` header, and is handed to the run's listeners as an `Exchange` (which is
how every response our scenarios see also passes the registered response checks).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from .pacing import RetryPolicy, Throttle

__all__ = ["ApiClient", "Exchange", "RequestRecord", "ServerClock", "Unreachable"]

_UNSET: Any = object()


class Unreachable(ConnectionError):
    """The server did not answer (connection refused, DNS, TLS or timeout)."""


@dataclass(frozen=True)
class RequestRecord:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None = None


@dataclass(frozen=True)
class Exchange:
    """One request and its answer."""

    request: RequestRecord
    status: int
    headers: dict[str, str]
    content: bytes
    elapsed: float
    #: the contract operation the request went to, when known
    operation_id: str | None = None
    #: the path relative to the API's base URL (without query)
    path: str = ""
    query: dict[str, Any] = field(default_factory=dict)
    request_json: Any = None
    #: order among every request of the run
    seq: int = 0
    #: who sent it: "primary", "other" (another tenant), "limited" (a key without a scope) or "anonymous"
    identity: str = "primary"

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.content) if self.content else None
        except (ValueError, UnicodeDecodeError):
            return None

    @property
    def method(self) -> str:
        return self.request.method


class ServerClock:
    """The server's idea of now, from the `Date` headers it sends (whole seconds), moving with our own clock
    between answers. Falls back to our clock when the server sends no `Date`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: float | None = None
        self._local: float = 0.0

    def observe(self, date_header: str | None) -> None:
        if not date_header:
            return
        try:
            moment = parsedate_to_datetime(date_header)
        except (TypeError, ValueError):
            return
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        with self._lock:
            self._server = moment.timestamp()
            self._local = time.monotonic()

    def now(self) -> datetime:
        with self._lock:
            if self._server is None:
                return datetime.now(UTC)
            return datetime.fromtimestamp(self._server + (time.monotonic() - self._local), UTC)

    @property
    def known(self) -> bool:
        return self._server is not None


Listener = Callable[[Exchange], None]


class ApiClient:
    """Requests to one API base URL with one set of credentials."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        throttle: Throttle | None = None,
        retry: RetryPolicy | None = None,
        clock: ServerClock | None = None,
        timeout: float = 10.0,
        resolve: Callable[[str, str], str | None] | None = None,
        listeners: Iterable[Listener] = (),
        http: httpx.Client | None = None,
        identity: str = "anonymous",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.throttle = throttle or Throttle(0)
        self.retry = retry or RetryPolicy()
        self.clock = clock or ServerClock()
        self.resolve = resolve
        self.listeners = list(listeners)
        self.http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self.history: deque[Exchange] = deque(maxlen=12)
        self.sequence = itertools.count(1)
        self.identity = identity

    def derive(self, *, identity: str, headers: dict[str, str] | None = None, drop: Iterable[str] = ()) -> ApiClient:
        """The same client as another identity (sharing throttle, clock, listeners and connections)."""
        merged = {k: v for k, v in self.headers.items() if k.lower() not in {d.lower() for d in drop}}
        merged.update(headers or {})
        clone = ApiClient(
            self.base_url,
            headers=merged,
            throttle=self.throttle,
            retry=self.retry,
            clock=self.clock,
            resolve=self.resolve,
            listeners=self.listeners,
            http=self.http,
            identity=identity,
        )
        clone.history = self.history
        clone.sequence = self.sequence
        return clone

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = _UNSET,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Exchange:
        method = method.upper()
        merged = {**self.headers, **(headers or {})}
        content: bytes | None = None
        if json_body is not _UNSET:
            content = json.dumps(json_body).encode()
            merged.setdefault("Content-Type", "application/json")
        elif data is not None:
            content = urlencode(data).encode()
            merged.setdefault("Content-Type", "application/x-www-form-urlencoded")
        url = self.base_url + path
        if params:
            url += "?" + urlencode(params, doseq=True)
        attempt = 0
        while True:
            exchange = self._send(
                method, url, path, params or {}, merged, content, None if json_body is _UNSET else json_body
            )
            delay = self.retry.delay(exchange.status, exchange.headers.get("retry-after"), attempt)
            if delay is None:
                return exchange
            attempt += 1
            time.sleep(delay)

    def _send(
        self,
        method: str,
        url: str,
        path: str,
        params: dict[str, Any],
        headers: dict[str, str],
        content: bytes | None,
        request_json: Any,
    ) -> Exchange:
        self.throttle.wait()
        started = time.monotonic()
        try:
            response = self.http.request(method, url, headers=headers, content=content)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{method} {url.split('?')[0]}: {type(exc).__name__}: {exc}") from None
        record = RequestRecord(method=method, url=url, headers=tuple(headers.items()), body=content)
        exchange = Exchange(
            request=record,
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            content=response.content,
            elapsed=time.monotonic() - started,
            operation_id=self.resolve(method, path) if self.resolve else None,
            path=path,
            query=dict(params),
            request_json=request_json,
            seq=next(self.sequence),
            identity=self.identity,
        )
        self.clock.observe(exchange.headers.get("date"))
        self.history.append(exchange)
        for listener in self.listeners:
            listener(exchange)
        return exchange

    def get(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("DELETE", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("HEAD", path, **kwargs)
