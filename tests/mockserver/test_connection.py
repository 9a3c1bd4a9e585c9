"""One connection holds a bounded number of pipelined requests, answers every one of them in order, and lets go
of them when the client leaves."""

from __future__ import annotations

import json
import socket
import time
import weakref
from collections.abc import Iterator

import pytest

from mockserver.http.connection import MAX_QUEUED, SLICE, BoundedHttpProtocol
from mockserver.testing import RunningMock, start_mock

LIST = (
    b"GET /vms/api/v1/intercom/codes?per_page=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Authorization: Bearer demo-vms-alice\r\nX-Client: web\r\nX-UUID: pipeliner\r\n\r\n"
)
HEALTH = b"GET /seam/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture
def mock() -> Iterator[RunningMock]:
    with start_mock(seed=6) as running:
        yield running


def _connect(mock: RunningMock) -> socket.socket:
    host, port = mock.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _protocols(mock: RunningMock) -> list[BoundedHttpProtocol]:
    return [p for p in mock._server.server_state.connections if isinstance(p, BoundedHttpProtocol)]


def _read_answers(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """``count`` answers off the socket: (status, body) each, in the order they came."""
    buffer = b""
    answers = []
    while len(answers) < count:
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65_536)
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length:"))
        while len(buffer) < length:
            buffer += sock.recv(65_536)
        answers.append((int(lines[0].split()[1]), buffer[:length]))
        buffer = buffer[length:]
    return answers


def _post(path: bytes, body: dict) -> bytes:
    content = json.dumps(body).encode()
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"X-Client: web\r\nX-UUID: pipeliner\r\nContent-Length: " + str(len(content)).encode() + b"\r\n\r\n" + content
    )


def test_pipelined_requests_are_all_answered_in_order(mock: RunningMock) -> None:
    """More requests than the bound, with bodies larger than a parsing slice among them, sent in one go."""
    login = _post(b"/vms/api/v1/token", {"login": "alice@demo.test", "pad": "p" * (3 * SLICE), "password": "x"})
    requests = [HEALTH, LIST, login] * (MAX_QUEUED * 2)
    with _connect(mock) as sock:
        sock.sendall(b"".join(requests))
        answers = _read_answers(sock, len(requests))
    expected = [200, 200, 422] * (MAX_QUEUED * 2)
    assert [status for status, _ in answers] == expected
    assert all(json.loads(body) == {"ok": True} for status, body in answers[::3])
    # Alice's codes in the demo building: each list answer is the whole list, not a fragment of another answer.
    assert all(len(json.loads(body)["data"]) == 2 for status, body in answers[1::3])


def test_a_client_that_does_not_read_cannot_make_the_mock_queue_without_bound(mock: RunningMock) -> None:
    with _connect(mock) as sock:
        sock.settimeout(0.5)
        batch = LIST * 200
        sent = 0
        while sent < 200_000:
            try:
                sock.sendall(batch)
            except TimeoutError:
                break  # the mock stopped reading: the kernel's buffers are full
            sent += 200
        time.sleep(0.3)
        (protocol,) = _protocols(mock)
        # Requests parsed and waiting: the bound, plus at most what one parsing slice held.
        assert len(protocol.pipeline) <= MAX_QUEUED + SLICE // len(LIST) + 1
        # Bytes read and not parsed: at most one read of the event loop's (256 KiB) and a slice.
        assert len(protocol._unparsed) <= 256 * 1024 + SLICE
        assert protocol.flow.read_paused
        assert sent < 200_000, "the mock read everything the client sent"
        # The newest request is also the protocol's current one, which it keeps as uvicorn does; the others:
        newest, *older = [cycle for cycle, _ in protocol.pipeline]
        assert newest is protocol.cycle and older
        queued = [weakref.ref(cycle) for cycle in older]
        del newest, older, protocol
    # The client left with its answers unread: the queued requests are let go at once, no collection needed.
    deadline = time.monotonic() + 10
    while any(ref() is not None for ref in queued) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(ref() is None for ref in queued)
    assert _protocols(mock) == []


def test_stopping_closes_open_connections_and_frees_the_port() -> None:
    # `start_mock` stops through `PromptServer`, which does uvicorn's shutdown steps without its fixed pauses.
    running = start_mock(seed=6)
    idle, busy = _connect(running), _connect(running)
    idle.sendall(HEALTH)
    assert _read_answers(idle, 1)[0][0] == 200
    busy.sendall(HEALTH[:20])  # a request half sent
    running.stop()
    assert not running._thread.is_alive()
    assert idle.recv(1) == b"" and busy.recv(1) == b""  # both closed by the server
    with pytest.raises(ConnectionRefusedError):
        _connect(running)
