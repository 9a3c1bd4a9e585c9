"""`conformance proxy`: stand between an application and a vendor (or the mock), forward every exchange as it is,
and hold each one to the contract as the application really uses it.

A request problem is the client's violation, a response problem the server's; where the contract states one of
the mock's choices the difference is a note (unless `--strict`), as in a run. The response checks are the suite's
own (`conformance.checks`): those that need no extra traffic run on every answer. Exchanges are forwarded first
and judged after, in order, on a thread of their own, so the application waits only for the forwarding.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from mockserver.contracts import Contract, load_contract
from mockserver.redaction import redact_query, redact_text_body

from .checks import RESPONSE_CHECKS  # noqa: F401 - importing registers the response checks
from .checks.common import Observation, run_response_checks
from .deviations import Deviations
from .events import RequestView
from .openapi_check import validator_for
from .redact import MASK, SENSITIVE_HEADERS
from .reports import curl

__all__ = ["Exchange", "Judge", "ProxyApp", "Verdict"]

#: headers that belong to one connection, never forwarded (RFC 9110 §7.6.1)
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
#: bytes of a body kept for judging and recording (the rest is forwarded, not kept)
KEPT_BODY = 4 * 1024 * 1024
#: how each API carries its credentials
CREDENTIAL_HEADERS = {"vms": "authorization", "seam": "authorization", "magicline": "x-api-key"}


@dataclass
class Exchange:
    """One request and its answer, as forwarded."""

    started: datetime
    method: str
    #: the path relative to the API's base (the proxy's own root), and the raw query string
    path: str
    query: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    status: int = 502
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""
    seconds: float = 0.0
    upstream_url: str = ""
    error: str | None = None

    def response_header(self, name: str) -> str | None:
        return next((value for key, value in self.response_headers if key.lower() == name), None)

    def decoded_response(self) -> bytes:
        """The response body as the application reads it (a gzip or deflate encoding undone)."""
        encoding = (self.response_header("content-encoding") or "").lower()
        if encoding in ("gzip", "deflate"):
            try:
                return zlib.decompress(
                    self.response_body, 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
                )
            except zlib.error:
                return b""
        return self.response_body


@dataclass(frozen=True)
class Verdict:
    """What broke in one exchange: `side` is "server", "client" or "note"."""

    side: str
    check: str
    operation: str
    message: str


class _Session:
    """What the response checks need of a run: the view to judge by, and where differences from the mock's
    choices go."""

    def __init__(self, contract: Contract, deviations: Deviations) -> None:
        self.contract = contract
        self.deviations = deviations
        self.strict = contract.strict

    def deviate(self, check: str, operation: str, message: str) -> None:
        self.deviations.report(check, operation, message)


class Judge:
    """Holds exchanges to one API's contract (the vendor view unless `strict`)."""

    def __init__(self, api: str, *, strict: bool = False) -> None:
        self.api = api
        self.strict = strict
        self.written = load_contract(api)
        self.view = self.written.view(strict=strict)
        self.validator = validator_for(self.written)

    def verdicts(self, exchange: Exchange) -> list[Verdict]:
        deviations = Deviations(self.strict)
        session = _Session(self.view, deviations)
        operation = self.view.find(exchange.method, exchange.path)
        label = operation.label if operation else f"{exchange.method} {exchange.path}"
        found: list[Verdict] = []
        if exchange.error is not None:
            return [Verdict("server", "upstream", label, exchange.error)]
        if operation is None:
            return [Verdict("client", "unknown_operation", label, "the contract has no such operation")]
        headers = {name.lower(): value for name, value in exchange.request_headers}
        if operation.secured and not headers.get(CREDENTIAL_HEADERS[self.api]):
            found.append(Verdict("client", "credentials", label, "the request carries no credentials"))
        for problem in self.validator.request_problems(
            exchange.method, exchange.path, query=exchange.query, headers=headers, body=exchange.request_body or None
        ):
            # A rule the documents give clients (send X-Client) binds the app even where a server need not enforce it.
            side = "note" if problem.marked and not problem.client_rule and not self.strict else "client"
            found.append(Verdict(side, "request_conformance", label, f"{problem.brief}: {problem.message}"))
        body = exchange.decoded_response()
        response_headers = {name.lower(): value for name, value in exchange.response_headers}
        if exchange.method != "HEAD":
            for problem in self.validator.response_problems(
                exchange.method, exchange.path, exchange.status, headers=response_headers, body=body
            ):
                if problem.location == "status":
                    chosen = operation.accepts(exchange.status, tuple(operation.statuses))
                    side = "note" if chosen and not self.strict else "server"
                    message = f"status {exchange.status} is not declared" + (
                        " (the mock chose another)" if chosen else ""
                    )
                    found.append(Verdict(side, "status_code_conformance", label, message))
                else:
                    side = "note" if problem.marked and not self.strict else "server"
                    found.append(
                        Verdict(side, "response_schema_conformance", label, f"{problem.brief}: {problem.message}")
                    )
        observation = Observation(
            api=self.api,
            operation_id=operation.operation_id,
            method=exchange.method,
            path=operation.path,
            status=exchange.status,
            body=_json(body),
            headers=response_headers,
            query=dict(parse_qsl(exchange.query, keep_blank_values=True)),
            path_params=operation.path_params(exchange.path),
            request_body=_json(exchange.request_body),
            content=body,
            session=session,
        )
        for check, failure in run_response_checks(observation):
            if failure is not None:
                message = getattr(failure, "message", str(failure))
                found.append(Verdict("server", getattr(failure, "check", check), label, message))
        found += [Verdict("note", item.check, label, item.message) for item in deviations.drain()]
        return found


def redacted_view(exchange: Exchange, base_url: str) -> RequestView:
    """The request, credentials masked, as a reproduction shows it."""
    query = redact_query(exchange.query.encode("latin-1")).decode("latin-1")
    url = base_url.rstrip("/") + exchange.path + (f"?{query}" if query else "")
    headers = tuple(
        (name, MASK if name.lower() in SENSITIVE_HEADERS else value)
        for name, value in exchange.request_headers
        if name.lower() not in HOP_BY_HOP and name.lower() != "content-length"
    )
    body = redact_text_body(exchange.request_body).decode("utf-8", "replace") if exchange.request_body else None
    return RequestView(exchange.method, url, headers, body)


class ProxyApp:
    """The ASGI application: forwards each HTTP request to the upstream and hands the exchange on."""

    def __init__(self, upstream: str, on_exchange: Callable[[Exchange], None], *, timeout: float = 30.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.host = urlsplit(self.upstream).netloc
        self.on_exchange = on_exchange
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started, clock = datetime.now(UTC), time.perf_counter()
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        query = scope.get("query_string", b"").decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        exchange = Exchange(started, scope["method"], path, query, headers, b"")
        exchange.upstream_url = self.upstream + path + (f"?{query}" if query else "")
        kept = bytearray()

        async def body() -> AsyncIterator[bytes]:
            more = True
            while more:
                message = await receive()
                chunk = message.get("body", b"")
                if len(kept) < KEPT_BODY:
                    kept.extend(chunk[: KEPT_BODY - len(kept)])
                more = message.get("more_body", False)
                if chunk:
                    yield chunk

        forwarded = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP] + [("host", self.host)]
        length = next((v for k, v in headers if k.lower() == "content-length"), None)
        content: bytes | AsyncIterator[bytes] | None = None
        if length is not None and length.isdigit() and int(length) <= KEPT_BODY:
            # A body of known, modest size goes on in one piece: written in parts, it would wait on the peer's
            # delayed ACK. Larger or unknown ones stream.
            content = b"".join([chunk async for chunk in body()])
        elif length is not None or any(k.lower() == "transfer-encoding" for k, _ in headers):
            content = body()
        request = self.client.build_request(scope["method"], exchange.upstream_url, headers=forwarded, content=content)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            exchange.error = f"the upstream did not answer: {type(exc).__name__}: {exc}"
            exchange.request_body = bytes(kept)
            exchange.seconds = time.perf_counter() - clock
            await _plain(send, 502, b"the upstream did not answer\n")
            self.on_exchange(exchange)
            return
        exchange.status = response.status_code
        exchange.response_headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in response.headers.raw
            if k.decode("latin-1").lower() not in HOP_BY_HOP
        ]
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in exchange.response_headers],
            }
        )
        answer = bytearray()
        try:
            async for chunk in response.aiter_raw():
                if len(answer) < KEPT_BODY:
                    answer.extend(chunk[: KEPT_BODY - len(answer)])
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await response.aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        exchange.request_body, exchange.response_body = bytes(kept), bytes(answer)
        exchange.seconds = time.perf_counter() - clock
        self.on_exchange(exchange)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _plain(send: Any, status: int, text: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": text})


class Recorder:
    """Judges exchanges in order, in a process of its own (so judging never holds up the forwarding, which
    shares this process's interpreter lock); keeps verdicts for the report and exchanges for the HAR."""

    def __init__(self, api: str, print_line: Callable[[str], None], *, strict: bool = False, keep: bool) -> None:
        self.print_line = print_line
        self.keep = keep
        self.exchanges: list[Exchange] = []
        self.verdicts: list[tuple[Exchange, Verdict]] = []
        self.count = 0
        context = multiprocessing.get_context("spawn")  # a fork would copy this process's running threads
        self._pool = ProcessPoolExecutor(1, mp_context=context, initializer=_start_judge, initargs=(api, strict))
        self._queue: queue.Queue[Exchange | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="conformance-proxy-judge", daemon=True)
        self._thread.start()

    def __call__(self, exchange: Exchange) -> None:
        self._queue.put(exchange)

    def close(self) -> None:
        """Judge what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()
        self._pool.shutdown()

    def _work(self) -> None:
        while (exchange := self._queue.get()) is not None:
            self.count += 1
            if self.keep:
                self.exchanges.append(exchange)
            try:
                verdicts = self._pool.submit(_judge, exchange).result()
            except Exception as exc:  # a judging error must not stop the proxy; it is reported as such
                verdicts = [Verdict("note", "proxy", exchange.path, f"could not judge: {type(exc).__name__}: {exc}")]
            self.verdicts += [(exchange, verdict) for verdict in verdicts]
            self.print_line(line(exchange, verdicts))


_JUDGE: Judge | None = None


def _start_judge(api: str, strict: bool) -> None:
    global _JUDGE
    _JUDGE = Judge(api, strict=strict)


def _judge(exchange: Exchange) -> list[Verdict]:
    assert _JUDGE is not None
    return _JUDGE.verdicts(exchange)


def line(exchange: Exchange, verdicts: list[Verdict]) -> str:
    """One line per exchange: method, path, status, time, and ✓ or what broke."""
    target = exchange.path + (
        f"?{redact_query(exchange.query.encode('latin-1')).decode('latin-1')}" if exchange.query else ""
    )
    head = f"{exchange.method} {target} {exchange.status} {exchange.seconds * 1000:.0f} ms"
    worst = [v for v in verdicts if v.side == "server"] or [v for v in verdicts if v.side == "client"]
    if worst:
        first = worst[0]
        more = f" (+{len(worst) - 1})" if len(worst) > 1 else ""
        return f"{head} ✗ {first.side}: {first.check}: {first.message}{more}"
    notes = [v for v in verdicts if v.side == "note"]
    return f"{head} ✓" + (f" · {len(notes)} note{'s' if len(notes) > 1 else ''}" if notes else "")


def report(recorder: Recorder, base_url: str) -> dict[str, Any]:
    """The JSON report: the exchanges' count, and each violation and note once, with a redacted reproduction."""
    sections: dict[str, dict[tuple[str, str, str], dict[str, Any]]] = {"server": {}, "client": {}, "note": {}}
    for exchange, verdict in recorder.verdicts:
        key = (verdict.check, verdict.operation, verdict.message)
        entry = sections[verdict.side].get(key)
        if entry is None:
            sections[verdict.side][key] = {
                "operation": verdict.operation,
                "check": verdict.check,
                "what": verdict.message,
                "times": 1,
                "curl": curl(redacted_view(exchange, base_url)),
            }
        else:
            entry["times"] += 1
    return {
        "exchanges": recorder.count,
        "server_violations": list(sections["server"].values()),
        "client_violations": list(sections["client"].values()),
        "notes": list(sections["note"].values()),
    }


def _json(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        return None
