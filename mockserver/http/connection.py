"""What one HTTP connection may hold: uvicorn's httptools protocol with a bound on pipelined requests.

uvicorn parses every request in what it reads, queues the ones that wait behind the request being answered, and
reads again after each answer. A client that pipelines requests and never reads its answers therefore grew the
process without bound (about 3.4 KB per queued request: 61 to 576 MB after ~149,000 requests), and the queue
stayed after the client left. `BoundedHttpProtocol` parses no further while `MAX_QUEUED` requests wait: the
bytes it has read are kept unparsed, reading pauses, and TCP holds the client back. Each answer that lets a
queued request start lets parsing go on. When the client leaves, the queue is dropped at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .supported import release, require

#: the uvicorn releases the tests ran on (pyproject.toml declares the same range): this module subclasses its
#: protocol and relies on its `pipeline` queue and `flow` control, which are not its public API (on 0.52.0, a
#: websocket client that stops reading is not closed with 4100 in tests/mockserver/test_push.py; 0.52.4 passes)
LOWEST, BELOW = (0, 52, 4), (0, 55)

require(
    "uvicorn",
    release("uvicorn"),
    LOWEST,
    BELOW,
    [
        (HttpToolsProtocol, "data_received"),
        (HttpToolsProtocol, "on_response_complete"),
        (HttpToolsProtocol, "connection_lost"),
        (FlowControl, "pause_reading"),
        (FlowControl, "resume_reading"),
        (uvicorn.Server, "main_loop"),
        (uvicorn.Server, "on_tick"),
        (uvicorn.Server, "shutdown"),
    ],
)

#: requests a connection may have parsed and waiting behind the one being answered
MAX_QUEUED = 32
#: bytes handed to the parser at a time once requests queue up (at most this many bytes of requests more)
SLICE = 4_096


class _Flow(FlowControl):
    """uvicorn's flow control, except that reading stays paused while the connection has requests waiting
    to be parsed or too many waiting to be answered."""

    def __init__(self, transport: asyncio.Transport, protocol: BoundedHttpProtocol) -> None:
        super().__init__(transport)
        self._protocol = protocol

    def resume_reading(self) -> None:
        if not self._protocol.backlogged():
            super().resume_reading()


class BoundedHttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _Flow(transport, self)
        self._unparsed = b""

    def backlogged(self) -> bool:
        return bool(self._unparsed) or len(self.pipeline) >= MAX_QUEUED

    def data_received(self, data: bytes) -> None:
        if not self._unparsed and len(data) <= SLICE and len(self.pipeline) < MAX_QUEUED:
            super().data_received(data)  # the usual case: a request or a few, parsed as uvicorn does
        else:
            self._unparsed += data
            self._parse()
        if self.backlogged():
            self.flow.pause_reading()

    def _parse(self) -> None:
        """Parse what was read, a slice at a time, until requests queue up to the bound."""
        data, self._unparsed = self._unparsed, b""
        view = memoryview(data)
        for start in range(0, len(data), SLICE):
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # a malformed request closed the connection, or it became a websocket: as uvicorn
            if len(self.pipeline) >= MAX_QUEUED:
                self._unparsed = bytes(view[start:])
                return
            super().data_received(view[start : start + SLICE])  # type: ignore[arg-type]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # starts the next queued request, if any
        if self._unparsed and len(self.pipeline) < MAX_QUEUED and not self.transport.is_closing():
            self._parse()
            self.flow.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # The queued requests will never be answered; each refers to this protocol, so without this they would
        # wait for a full garbage collection (which `mockserver run` keeps rare).
        self.pipeline.clear()
        self._unparsed = b""


class PromptServer(uvicorn.Server):
    """uvicorn's server that stops as soon as `stop` is called, from any thread. uvicorn's own loop looks at
    `should_exit` once a tick (0.1 s), and its shutdown pauses 0.1 s before it looks at the connections: a test run
    starts about 190 mocks and waited 27 s in all for them to stop."""

    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    def stop(self) -> None:
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed: it has stopped
                loop.call_soon_threadsafe(wake.set)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's own steps, in its order, polling where it pauses
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:
            await asyncio.sleep(0.005)
        if not self.force_exit:
            await self.lifespan.shutdown()
