"""ASGI middleware around the Connexion app.

`MockHttpMiddleware` wraps everything: it opens the request context (`mockserver.http.context`), answers the
Pusher websocket and the panel's, guards the control API (`control_access`), bounds request bodies, stamps the
simulated `Date` header and records the journal.
`LimitsAndFaults` sits inside Connexion, after routing and security (so it knows the operation and the
tenant), and applies rate limits and injected faults before the request reaches validation and the handler.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from connexion.lifecycle import ConnexionRequest
from starlette.datastructures import URL
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from ..store.base import StoreUnavailable
from .context import RequestContext, context, current
from .control_access import PANEL_LIVE, PANEL_PATH, guards, token_shown
from .errors import FieldError, vendor_for_path
from .headers import first_headers, with_lowercase_media_types
from .journal import JournalEntry

if TYPE_CHECKING:
    from ..runtime import Runtime
    from .fast_routing import FastRouter
    from .faults import Faults
    from .vendor import Vendor

log = logging.getLogger("mockserver")

#: bytes of each body the journal keeps
JOURNAL_BODY_LIMIT = 65_536
#: seconds without a request after which a replica catches up with the shared building on its own
KEEP_UP_S = 0.1


class BodyTooLarge(FieldError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            location="body",
            field=None,
            rule="maxBytes",
            message=f"The request body is larger than {limit} bytes",
            constraint=limit,
        )


class MockHttpMiddleware:
    """``router`` (`mockserver.http.fast_routing`), when given, takes the requests it can route for certain
    straight to their operations; everything else goes to ``app``."""

    def __init__(self, app: ASGIApp, runtime: Runtime, *, router: FastRouter | None = None) -> None:
        self.app = app
        self.runtime = runtime
        self.router = router
        self._date_second = -1
        self._date_value = b""
        #: the replica's keep-up task (`_keep_up`) and when (loop time) the last request entered its view
        self._keeper: asyncio.Task[None] | None = None
        self._last_view = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # Connexion's router works on a shallow copy of the scope; a shared extensions dict lets the context
            # out here see which operation was routed and who was authenticated.
            scope.setdefault("extensions", {})
            served = RequestContext(self.runtime, scope)
            token = current.set(served)
            try:
                fanout = self.runtime.fanout
                if fanout is not None:
                    self._keep_up_while_idle()
                    # Sent in this turn's pipeline with the view's catch-up: who listens on which push channel.
                    read = fanout.refresh()
                    # One request, one view of the shared building: other replicas' commits are caught up with
                    # once, fetched without blocking the event loop.
                    async with self.runtime.building.view():
                        await fanout.listening(read)
                        await self._http(served, scope, receive, send)
                else:
                    await self._http(served, scope, receive, send)
            finally:
                current.reset(token)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _keep_up_while_idle(self) -> None:
        """Note a request, and make sure the keep-up task runs on this loop."""
        loop = asyncio.get_running_loop()
        self._last_view = loop.time()
        if self._keeper is None or self._keeper.done() or self._keeper.get_loop() is not loop:
            # A context of its own: not the request's that happened to start it.
            self._keeper = loop.create_task(self._keep_up(), context=contextvars.Context())
            self.runtime.loop_tasks.add(self._keeper)

    async def _keep_up(self) -> None:
        """While no request comes, catch up with the shared building every `KEEP_UP_S`, as a request would (a view
        and the clock and faults read in it). A replica idle while others write otherwise met all of their commits
        at once with its next request, whose loop then stood still applying them (the bench's second replica, idle
        while the first took 10,000 creates: 250 ms at p99 when it joined), or reloaded everything once the log no
        longer reached back. A fetch that fails is left alone: the next request says why."""
        loop = asyncio.get_running_loop()
        runtime = self.runtime
        while True:
            await asyncio.sleep(KEEP_UP_S)
            if loop.time() - self._last_view < KEEP_UP_S:
                continue
            try:
                view = runtime.building.view()
                async with view:
                    if getattr(view, "fetched_ahead", False):
                        runtime.sync_shared()
            except Exception:  # the task must go on; what failed is the next request's to meet
                log.exception("catching up with the shared building failed")

    async def _http(self, served: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        if runtime.webhooks.loop is None:
            runtime.webhooks.loop = asyncio.get_running_loop()
        if runtime.shared:
            runtime.sync_shared()
        path: str = scope["path"]

        if runtime.control_token and guards(path) and not token_shown(scope, runtime.control_token, runtime.public_url):
            detail = "The control API needs the X-Mock-Control-Token header"
            if path == PANEL_PATH or path.startswith(PANEL_PATH + "/"):
                detail += f"; in a browser, open {PANEL_PATH}?token=TOKEN once (the token `mockserver run` printed)"
            response = JSONResponse(
                {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": detail},
                status_code=401,
                media_type="application/problem+json",
            )
            await response(scope, receive, send)
            return

        # One pass over the headers for what this layer needs from them.
        sent_headers = scope["headers"]
        limit = runtime.settings.max_body_bytes
        typed = oversized = from_browser = False
        for name, value in sent_headers:
            if name == b"content-type":
                typed = True
            elif name == b"content-length":
                oversized = oversized or (value.isdigit() and int(value) > limit)
            elif name == b"origin":
                from_browser = True
        if typed:
            # The journal keeps the headers as the client sent them; the app sees media types in one spelling.
            lowercased = with_lowercase_media_types(sent_headers)
            if lowercased is not None:
                scope["headers"] = lowercased

        started = time.perf_counter()
        journal = runtime.journal
        recording = journal.size > 0
        request_chunks: list[bytes] = []
        response_chunks: list[bytes] = []
        received = 0
        kept = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise BodyTooLarge(limit)
                if recording and received <= JOURNAL_BODY_LIMIT:
                    request_chunks.append(chunk)
            return message

        if oversized:
            # Refuse before reading; the body is the vendor's validation error.
            bounded_receive = _oversized_receive(limit)

        status = 0
        response_headers: list[tuple[bytes, bytes]] = []
        date = self._date_header()

        async def stamped_send(message: Message) -> None:
            nonlocal status, response_headers, kept
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k != b"date"]
                if 300 <= status < 400:
                    headers = _own_location(headers, scope, runtime.public_url)
                headers.append((b"date", date))
                message = {**message, "headers": headers}
                response_headers = headers
            elif recording and kept <= JOURNAL_BODY_LIMIT:
                chunk = message.get("body", b"")
                kept += len(chunk)
                response_chunks.append(chunk)
            await send(message)

        app = self.app
        router = self.router
        matched = None
        if router is not None and not from_browser:
            # Browsers (CORS) take the full chain; everything else may go straight to its operation.
            matched = router.match(scope)
        if scope["method"] == "HEAD":
            vendor = vendor_for_path(runtime.vendors, path)
            try:
                early = vendor.intercept("HEAD", path, first_headers(scope["headers"])) if vendor else None
            except StoreUnavailable:
                early = 503  # the key could not be looked up: unavailable, as the vendor's other operations answer
            if early is not None:
                app = _empty_response(early)
        try:
            if matched is None or router is None:
                await app(scope, bounded_receive, stamped_send)
            else:
                answer = await router.respond(matched, scope, bounded_receive)
                await answer(scope, bounded_receive, stamped_send)
        finally:
            if recording:
                journal.add(
                    JournalEntry(
                        id=journal.next_id(),
                        at=runtime.clock.now(),
                        method=scope["method"],
                        path=path,
                        query=scope.get("query_string", b""),
                        status=status,
                        duration_ms=round((time.perf_counter() - started) * 1000, 3),
                        operation_id=served.operation_id,
                        request_headers=sent_headers,
                        request_body=b"".join(request_chunks),
                        response_headers=response_headers,
                        response_body=b"".join(response_chunks),
                    )
                )

    def _date_header(self) -> bytes:
        """The simulated clock's time as an HTTP date, formatted once per simulated second."""
        second = int(self.runtime.clock.timestamp())
        if second != self._date_second:
            self._date_second = second
            self._date_value = email.utils.formatdate(second, usegmt=True).encode()
        return self._date_value

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        hub = runtime.hub
        vms = runtime.vendors.get("vms")
        websocket = WebSocket(scope, receive, send)
        if scope["path"] == PANEL_LIVE:
            if runtime.control_token and not token_shown(scope, runtime.control_token, runtime.public_url):
                await websocket.close(code=1008)  # before the handshake: the browser sees 403
                return
            from ..panel import serve_live  # the panel reads through the control API's views, which import this

            await serve_live(websocket, runtime)
            return
        if vms is None or not scope["path"].startswith(vms.prefix + "/ws/app/"):
            await websocket.close(code=1008)
            return
        scope.setdefault("path_params", {})["app_key"] = scope["path"].rsplit("/", 1)[-1]
        await hub.endpoint(websocket)


def _own_location(
    headers: list[tuple[bytes, bytes]], scope: Scope, public_url: str | None
) -> list[tuple[bytes, bytes]]:
    """A redirect to the mock itself, without the host the client named: Starlette's trailing-slash redirect
    builds an absolute Location from the Host header (``Host: evil.example`` sent clients to evil.example).
    Such a Location becomes relative, or absolute on ``--public-url`` when one is configured."""
    # The origin exactly as Starlette's redirect wrote it (from the Host header, else the socket's address).
    origin = URL(scope={**scope, "path": "", "query_string": b""})
    own = f"{origin.scheme}://{origin.netloc}".encode("latin-1")
    rewritten = []
    for name, value in headers:
        if name == b"location" and value.startswith(own) and value[len(own) : len(own) + 1] in (b"", b"/", b"?"):
            target = value[len(own) :] or b"/"
            value = public_url.encode("latin-1") + target if public_url else target
        rewritten.append((name, value))
    return rewritten


def _empty_response(status: int) -> ASGIApp:
    async def respond(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    return respond


def _oversized_receive(limit: int) -> Callable[[], Coroutine[Any, Any, Message]]:
    async def receive() -> Message:
        raise BodyTooLarge(limit)

    return receive


async def limit_and_inject(
    faults: Faults,
    vendor: Vendor,
    request: ConnexionRequest,
    operation_id: str | None,
    token_info: dict[str, Any] | None,
    declared: frozenset[int],
) -> None:
    """The vendor's rate limit for this call, then any injected fault: its latency, then its status."""
    if operation_id is not None:
        await vendor.limit(request, operation_id, token_info)
    fault = faults.match(vendor.name, operation_id, vendor.tenant(token_info), declared)
    if fault is not None:
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        if fault.status is not None:
            raise vendor.status(request, fault.status, operation_id)


class LimitsAndFaults:
    """Inside Connexion, after security: the vendor's rate limits, then any injected fault."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        served = context()
        vendor = vendor_for_path(served.runtime.vendors, scope["path"])
        if vendor is not None:
            operation_id = served.operation_id
            request = ConnexionRequest(scope, receive)
            declared = declared_of(vendor.name, operation_id)
            await limit_and_inject(served.runtime.faults, vendor, request, operation_id, served.token_info, declared)
        await self.app(scope, receive, send)


def declared_of(api: str, operation_id: str | None) -> frozenset[int]:
    """The statuses the contract declares for an operation (none for an unrouted request)."""
    from ..contracts import load_contract

    if operation_id is None:
        return frozenset()
    return load_contract(api).operation(operation_id).statuses
