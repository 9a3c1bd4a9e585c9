"""Run the mock inside your own tests, without a subprocess.

    from mockserver.testing import start_mock

    with start_mock(seed=0) as mock:
        httpx.get(mock.urls["seam"] + "/health")
        token = mock.credentials["vms"][0]["access_token"]
        mock.clock.advance(hours=25)
        with mock.client("seam") as seam:  # no socket: requests go straight to the app
            seam.get("/health")

With pytest, the `mock_server` fixture (registered by this package's pytest plugin) yields the same object for
each test, on a fresh demo building with a frozen clock.

Being a pytest plugin, this module is imported by every pytest run in an environment that has the package: it
loads the server (Connexion and the rest) only when a mock is started, so other test runs pay nothing for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import pathlib
import socket
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from .domain.clock import ManualClock

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from .app import MockApp
    from .domain.building import Rules
    from .http.connection import PromptServer
    from .runtime import Runtime, Settings

__all__ = ["RunningMock", "mock_server", "start_mock"]


@dataclass
class RunningMock:
    """A mock serving on 127.0.0.1 in a background thread."""

    base_url: str
    #: base URL of each API: "magicline", "seam", "vms" and "control"
    urls: dict[str, str]
    #: the same data as GET /_mock/credentials
    credentials: dict[str, Any]
    clock: ManualClock
    runtime: Runtime
    app: MockApp
    _server: PromptServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    #: the app as served (wrapped, when `start_mock` was given `wrap`) and the event loop serving it
    _served: ASGIApp = field(repr=False)
    _loop: asyncio.AbstractEventLoop = field(repr=False)

    def client(self, api: str | None = None, *, timeout: float = 30.0, **options: Any) -> httpx.Client:
        """An httpx client whose requests go straight to the app on the mock's own event loop: no socket, no HTTP
        parsing, no TLS set-up (a bare `httpx.get` builds an SSL context each call, about 25 ms). ``api`` ("seam",
        "control", ...) makes that API's URL the base URL (default: the mock's root); ``options`` go to
        `httpx.Client`. What needs a connection (websockets, streamed answers, malformed HTTP) uses `urls`."""
        base = self.urls[api] if api else self.base_url
        transport = _AppTransport(self._served, self._loop, timeout)
        return httpx.Client(base_url=base, transport=transport, timeout=timeout, **options)

    def stop(self) -> None:
        self._server.stop()
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningMock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _AppTransport(httpx.BaseTransport):
    """httpx's ASGI transport run on the mock's event loop, for a synchronous client in another thread. An app that
    raises answers 500, as it would through uvicorn."""

    def __init__(self, app: ASGIApp, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._loop = loop
        self._timeout = timeout

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # The body is read here, in the caller's thread, and sent from the loop's thread in the pieces the caller
        # gave (`content=iter([...])`): a body that arrives in several pieces is how a socket delivers a big one.
        request.stream = _Pieces([bytes(piece) for piece in request.stream])  # type: ignore[union-attr]
        future = asyncio.run_coroutine_threadsafe(self._exchange(request), self._loop)
        try:
            return future.result(self._timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise httpx.ReadTimeout("the mock did not answer in time", request=request) from exc

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        response = await self._asgi.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(content))


class _Pieces(httpx.AsyncByteStream):
    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece


def _free_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this; without it small responses wait on delayed ACKs (~40 ms each).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, 0))
    return sock


def start_mock(
    *,
    seed: int | None = 0,
    fixtures: str | pathlib.Path | dict[str, Any] | None = None,
    state_path: str | pathlib.Path | None = None,
    apis: tuple[str, ...] | None = None,
    start: datetime | None = None,
    frozen: bool = True,
    settings: Settings | None = None,
    rules: Rules | None = None,
    validate_responses: bool = False,
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
    host: str = "127.0.0.1",
    pipeline: str = "compiled",
    read_cache: bool = True,
    clock: ManualClock | None = None,
    choices: dict[str, str] | None = None,
    control_token: str | None = None,
    public_url: str | None = None,
) -> RunningMock:
    """Start a mock on a free port and wait until it answers. ``apis`` serves a subset (default: all three).
    ``wrap`` may wrap the whole ASGI app (to plant a bug, for instance). The clock is frozen by default so tests
    decide when time passes; ``clock`` replaces it (``start`` and ``frozen`` are then ignored); ``choices``
    switches the mock's choices (`mockserver.choices`). ``control_token`` and ``public_url`` are those of
    `mockserver run`: the control API then wants the token, and links name the public URL."""
    with warnings.catch_warnings():
        # Connexion's imports warn about its own dependencies' deprecations, which no user of the mock can act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        import uvicorn

        from .app import VENDOR_APIS, create_app
        from .control import credentials_json
        from .http.connection import BoundedHttpProtocol, PromptServer

    if clock is None:
        clock = ManualClock(start, frozen=frozen)
    app = create_app(
        seed=seed,
        fixtures=fixtures,
        state_path=state_path,
        apis=VENDOR_APIS if apis is None else apis,
        clock=clock,
        settings=settings,
        rules=rules,
        validate_responses=validate_responses,
        pipeline=pipeline,
        read_cache=read_cache,
        choices=choices,
        control_token=control_token,
        public_url=public_url,
    )
    asgi: ASGIApp = wrap(app) if wrap is not None else app
    sock = _free_socket(host)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        asgi,
        log_level="warning",
        date_header=False,
        lifespan="off",
        ws="websockets-sansio",
        http=BoundedHttpProtocol,
    )
    server = PromptServer(config)
    loops: list[asyncio.AbstractEventLoop] = []

    async def serve_here() -> None:
        loops.append(asyncio.get_running_loop())
        try:
            await server.serve(sockets=[sock])
        finally:
            # The store stays open for the test (it may read it after `stop`); the loop's clients end with it.
            await app.runtime.close_loop_clients()

    def serve() -> None:
        asyncio.run(serve_here())

    thread = threading.Thread(target=serve, name=f"mockserver-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the mock server did not start")
        time.sleep(0.005)
    base = f"http://{host}:{port}"
    urls = app.runtime.urls(base)
    return RunningMock(
        base_url=base,
        urls=urls,
        credentials=credentials_json(app.runtime, urls),
        clock=clock,
        runtime=app.runtime,
        app=app,
        _server=server,
        _thread=thread,
        _served=asgi,
        _loop=loops[0],
    )


@pytest.fixture
def mock_server() -> Iterator[RunningMock]:
    """A fresh mock (demo building, seed 0, frozen clock, response validation on) for one test."""
    with start_mock(seed=0, validate_responses=True) as mock:
        yield mock
