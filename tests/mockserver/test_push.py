"""The Pusher-protocol push hub, driven over real websockets: a Python client and the real pusher-js client.

Each server is a tiny Starlette app (the hub at ``/app/{app_key}`` plus a ``POST /auth`` that signs like the
VMS's broadcasting/auth) served by uvicorn on 127.0.0.1 in a background thread. Nothing here sleeps for a
fixed time: tests wait on messages (with timeouts), on a ping/pong round trip (the hub handles a connection's
messages in order, so its pong proves everything sent before was processed) or on the server's ready event.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import queue
import random
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from mockserver.push import MAX_QUEUED, PusherHub

APP_KEY = "app-key"
APP_SECRET = "app-secret"
TOKEN = "test-token"
TIMEOUT = 10.0  # upper bound for any single wait; tests finish as soon as the awaited thing happens
FORGED = "0" * 64
JS_DIR = Path(__file__).resolve().parents[1] / "js"


# -- server and client helpers -------------------------------------------------------------------------------


def build_app(hub: PusherHub) -> Starlette:
    async def auth(request: Request) -> JSONResponse:
        # Stands in for the VMS's POST /api/v1/broadcasting/auth: Bearer token, form-encoded body.
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"message": "Unauthenticated."}, status_code=401)
        form = await request.form()
        socket_id, channel = form.get("socket_id"), form.get("channel_name")
        if not isinstance(socket_id, str) or not hub.valid_socket_id(socket_id) or not isinstance(channel, str):
            return JSONResponse({"message": "Invalid socket_id or channel_name."}, status_code=422)
        if channel.startswith("private-forged"):  # a broken signer, to see how the hub refuses it
            return JSONResponse({"auth": f"{APP_KEY}:{FORGED}"})
        return JSONResponse({"auth": hub.sign(socket_id, channel)})

    return Starlette(routes=[WebSocketRoute("/app/{app_key}", hub.endpoint), Route("/auth", auth, methods=["POST"])])


class _Uvicorn(uvicorn.Server):
    """uvicorn that announces, through an event, the moment it accepts connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


class Server:
    def __init__(self, hub: PusherHub) -> None:
        self.hub = hub
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))  # a free port, held from now on so nothing can take it
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(build_app(hub), log_level="warning", ws="websockets-sansio", lifespan="off")
        self._server = _Uvicorn(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        assert self._server.ready.wait(TIMEOUT), "uvicorn did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(TIMEOUT)
        self._sock.close()
        assert not self._thread.is_alive(), "uvicorn did not stop"

    def auth(self, socket_id: str, channel: str) -> str:
        response = httpx.post(
            f"http://127.0.0.1:{self.port}/auth",
            data={"socket_id": socket_id, "channel_name": channel},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=TIMEOUT,
        )
        response.raise_for_status()
        return response.json()["auth"]


class Client:
    """A bare websocket client speaking the Pusher protocol by hand."""

    def __init__(self, server: Server, key: str = APP_KEY, query: str = "protocol=7&client=pytest&version=1.0"):
        self.server = server
        self.ws = connect(f"ws://127.0.0.1:{server.port}/app/{key}?{query}", open_timeout=TIMEOUT)
        self.socket_id = ""

    def __enter__(self) -> Client:
        self.ws.__enter__()  # websockets 17 warns about connections not used as context managers
        return self

    def __exit__(self, *exc: object) -> None:
        self.ws.__exit__(None, None, None)

    def recv(self) -> dict[str, Any]:
        return json.loads(self.ws.recv(timeout=TIMEOUT))

    def send(self, event: str, data: Any = None, channel: str | None = None) -> None:
        message: dict[str, Any] = {"event": event, "data": {} if data is None else data}
        if channel is not None:
            message["channel"] = channel
        self.ws.send(json.dumps(message))

    def established(self) -> Client:
        message = self.recv()
        assert message["event"] == "pusher:connection_established"
        self.socket_id = json.loads(message["data"])["socket_id"]
        return self

    def subscribe(self, channel: str, auth: str | None = None) -> dict[str, Any]:
        data = {"channel": channel} if auth is None else {"channel": channel, "auth": auth}
        self.send("pusher:subscribe", data)
        return self.recv()

    def subscribe_private(self, channel: str) -> None:
        reply = self.subscribe(channel, self.server.auth(self.socket_id, channel))
        assert reply["event"] == "pusher_internal:subscription_succeeded", reply

    def sync(self) -> None:
        """Round-trip a ping: the pong comes after every reply to what was sent before, so none is pending."""
        self.send("pusher:ping")
        assert self.recv() == {"event": "pusher:pong", "data": "{}"}


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with Server(PusherHub(APP_KEY, APP_SECRET, rng=random.Random(2024))) as srv:
        yield srv


def publish(server: Server, channel: str, event: str, data: Any, exclude: str | None = None) -> int:
    return server.hub.publish_nowait(channel, event, data, exclude).result(TIMEOUT)


# -- connection ----------------------------------------------------------------------------------------------


def test_connection_established_carries_socket_id_and_activity_timeout_as_a_json_string(
    server: Server,
) -> None:
    with Client(server) as client:
        message = client.recv()
        assert message["event"] == "pusher:connection_established"
        assert isinstance(message["data"], str), "Pusher double-encodes this event's data"
        data = json.loads(message["data"])
        assert set(data) == {"socket_id", "activity_timeout"}
        assert re.fullmatch(r"[0-9]+\.[0-9]+", data["socket_id"])
        assert data["activity_timeout"] == 120
        client.sync()
        (described,) = [c for c in server.hub.connections() if c["socket_id"] == data["socket_id"]]
        assert described == {
            "socket_id": data["socket_id"],
            "channels": [],
            "protocol": 7,
            "client": "pytest",
            "version": "1.0",
        }


def test_socket_ids_repeat_with_the_same_seed() -> None:
    def first_ids(seed: int) -> list[str]:
        hub = PusherHub(APP_KEY, APP_SECRET, activity_timeout=30, rng=random.Random(seed))
        with Server(hub) as srv, Client(srv) as a, Client(srv) as b:
            return [a.established().socket_id, b.established().socket_id]

    ids = first_ids(7)
    assert ids == first_ids(7)
    assert ids[0] != ids[1]
    assert all(PusherHub.valid_socket_id(i) for i in ids)


def test_ping_is_answered_with_pong(server: Server) -> None:
    with Client(server) as client:
        client.established()
        client.send("pusher:ping")
        assert client.recv() == {"event": "pusher:pong", "data": "{}"}


def test_wrong_app_key_is_refused_with_4001(server: Server) -> None:
    with Client(server, key="not-the-key") as client:
        assert client.recv() == {
            "event": "pusher:error",
            "data": {"code": 4001, "message": "Application does not exist"},
        }
        with pytest.raises(ConnectionClosed) as closed:
            client.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


@pytest.mark.parametrize("query", ["", "client=js&version=8.4.0", "protocol=3", "protocol=8", "protocol=seven"])
def test_missing_or_unsupported_protocol_is_refused_with_4007(server: Server, query: str) -> None:
    with Client(server, query=query) as client:
        message = client.recv()
        assert message["event"] == "pusher:error" and message["data"]["code"] == 4007
        with pytest.raises(ConnectionClosed) as closed:
            client.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4007


def test_malformed_messages_get_pusher_error_and_the_connection_stays(server: Server) -> None:
    with Client(server) as client:
        client.established()
        for bad in ["not json", "[1, 2]", '{"data": {}}', '{"event": 5}']:
            client.ws.send(bad)
            message = client.recv()
            assert message["event"] == "pusher:error" and message["data"]["code"] is None, bad
        client.ws.send(b'{"event": "pusher:ping"}')  # the protocol is text frames only
        message = client.recv()
        assert message["event"] == "pusher:error" and "Binary" in message["data"]["message"]
        client.sync()


# -- subscriptions -------------------------------------------------------------------------------------------


def test_public_subscription_succeeds_and_receives_published_events(server: Server) -> None:
    with Client(server) as client:
        client.established()
        assert client.subscribe("news") == {
            "event": "pusher_internal:subscription_succeeded",
            "channel": "news",
            "data": "{}",
        }
        assert publish(server, "news", "headline", {"title": "Doors open", "n": 1}) == 1
        message = client.recv()
        assert message == {"event": "headline", "channel": "news", "data": '{"title":"Doors open","n":1}'}
        assert publish(server, "news", "raw", "already a string") == 1
        assert client.recv()["data"] == "already a string"


def test_private_subscription_with_a_good_signature_succeeds(server: Server) -> None:
    with Client(server) as client:
        client.established()
        client.subscribe_private("private-user.42")
        assert [c["channels"] for c in server.hub.connections() if c["socket_id"] == client.socket_id] == [
            ["private-user.42"]
        ]
        assert publish(server, "private-user.42", "App\\Events\\UserPush", {"id": 1}) == 1
        assert client.recv() == {
            "event": "App\\Events\\UserPush",
            "channel": "private-user.42",
            "data": '{"id":1}',
        }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("forged", "Invalid signature: Expected HMAC SHA256 hex digest of {sid}:{ch}, but got {forged}"),
        (
            "other socket",
            "Invalid signature: Expected HMAC SHA256 hex digest of {sid}:{ch}, but got {stolen}",
        ),
        (
            "other channel",
            "Invalid signature: Expected HMAC SHA256 hex digest of {sid}:{ch}, but got {other}",
        ),
        ("other key", "Invalid key in subscription auth data: 'other-key'"),
        ("missing", "Invalid key in subscription auth data: ''"),
    ],
)
def test_private_subscription_with_a_bad_signature_gets_pushers_error(server: Server, case: str, expected: str) -> None:
    channel = "private-user.42"
    with Client(server) as client:
        client.established()
        stolen = server.hub.sign("1.1", channel)  # valid, but for another connection
        other = server.hub.sign(client.socket_id, "private-user.43")
        auth = {
            "forged": f"{APP_KEY}:{FORGED}",
            "other socket": stolen,
            "other channel": other,
            "other key": f"other-key:{FORGED}",
            "missing": None,
        }[case]
        reply = client.subscribe(channel, auth)
        message = expected.format(
            sid=client.socket_id,
            ch=channel,
            forged=FORGED,
            stolen=stolen.split(":")[1],
            other=other.split(":")[1],
        )
        # As Pusher itself answers (not pusher:subscription_error, which pusher-js raises only when the auth
        # endpoint's HTTP call fails): a connection-level pusher:error, null code; the socket stays open.
        assert reply == {"event": "pusher:error", "data": {"code": None, "message": message}}
        client.sync()
        assert publish(server, channel, "App\\Events\\UserPush", {"id": 1}) == 0


def test_presence_encrypted_invalid_and_duplicate_subscriptions_are_refused(server: Server) -> None:
    with Client(server) as client:
        client.established()
        for channel, words in [
            ("presence-room.1", "Presence channels are not supported"),
            ("private-encrypted-x", "Encrypted channels are not supported"),
            ("bad#name", "Invalid channel name"),
            ("x" * 165, "Invalid channel name"),
        ]:
            reply = client.subscribe(channel, server.hub.sign(client.socket_id, "private-x"))
            assert reply["event"] == "pusher:error" and reply["data"]["code"] is None
            assert reply["data"]["message"].startswith(words), reply
        client.subscribe_private("private-user.1")
        again = client.subscribe("private-user.1", server.hub.sign(client.socket_id, "private-user.1"))
        assert again == {
            "event": "pusher:error",
            "data": {"code": None, "message": "Existing subscription to channel private-user.1"},
        }


def test_unsubscribe_stops_delivery(server: Server) -> None:
    with Client(server) as client:
        client.established()
        client.subscribe_private("private-user.5")
        client.subscribe("marker")
        client.send("pusher:unsubscribe", {"channel": "private-user.5"})
        client.sync()
        assert publish(server, "private-user.5", "App\\Events\\UserPush", {"id": 1}) == 0
        assert publish(server, "marker", "after", {}) == 1
        assert client.recv()["event"] == "after"  # nothing from the dropped channel came before it


# -- publishing ----------------------------------------------------------------------------------------------


def test_publish_can_exclude_the_socket_that_made_the_change(server: Server) -> None:
    with Client(server) as actor, Client(server) as other:
        for client in (actor, other):
            client.established()
            client.subscribe_private("private-user.9")
        count = publish(server, "private-user.9", "App\\Events\\UserPush", {"v": 1}, exclude=actor.socket_id)
        assert count == 1
        assert other.recv()["data"] == '{"v":1}'
        assert publish(server, "private-user.9", "marker", {}) == 2
        assert actor.recv()["event"] == "marker"  # the excluded push, had it been sent, would come first
        assert other.recv()["event"] == "marker"


def test_delivery_order_is_kept_per_connection(server: Server) -> None:
    with Client(server) as client:
        client.established()
        client.subscribe("ordered")
        futures = [server.hub.publish_nowait("ordered", "n", {"i": i}) for i in range(300)]
        assert [f.result(TIMEOUT) for f in futures] == [1] * 300
        assert [json.loads(client.recv()["data"])["i"] for _ in range(300)] == list(range(300))


class RawClient:
    """A websocket client on a bare socket with a tiny receive buffer, so it can truly stop reading.

    (The websockets client reads ahead into its own buffers, and loopback buffers here hold tens of MB:
    neither would make the server's writes block.)
    """

    def __init__(self, server: Server) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect, so it sticks
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", server.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /app/{APP_KEY}?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        assert chunk, "server closed the TCP connection"
        return chunk

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self._recv()
        taken, self.buffer = self.buffer[:n], self.buffer[n:]
        return taken

    def send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        assert len(payload) < 126  # enough for the short control messages sent here
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def frame(self) -> tuple[int, bytes]:
        """The next (opcode, payload) from the server (whose frames are never masked)."""
        first, second = self._take(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(self._take(2), "big")
        elif length == 127:
            length = int.from_bytes(self._take(8), "big")
        return first & 0x0F, self._take(length)


def test_a_client_that_stops_reading_is_closed_with_4100_instead_of_queueing_forever(server: Server) -> None:
    client = RawClient(server)
    try:
        assert json.loads(client.frame()[1])["event"] == "pusher:connection_established"
        client.send_text(json.dumps({"event": "pusher:subscribe", "data": {"channel": "firehose"}}))
        assert json.loads(client.frame()[1])["event"] == "pusher_internal:subscription_succeeded"
        # Now the client reads nothing: the socket buffers fill, then the hub's queue grows to its cap.
        payload = "x" * 20_000
        counts = [publish(server, "firehose", "big", payload) for _ in range(MAX_QUEUED + 1500)]
        delivered = sum(counts)
        assert counts[-1] == 0 and delivered < len(counts)
        # Once it reads again it gets everything queued before the cap, in order, then a 4100 close.
        received = 0
        while (frame := client.frame())[0] == 0x1:
            assert json.loads(frame[1])["data"] == payload
            received += 1
        assert received == delivered
        opcode, body = frame
        assert opcode == 0x8 and int.from_bytes(body[:2], "big") == 4100
    finally:
        client.sock.close()


def test_publish_awaits_from_another_event_loop(server: Server) -> None:
    with Client(server) as client:
        client.established()
        client.subscribe("loops")
        assert asyncio.run(server.hub.publish("loops", "e", ["a", 1])) == 1
        assert client.recv()["data"] == '["a",1]'


def test_client_events_are_relayed_on_private_channels_to_the_others_only(server: Server) -> None:
    with Client(server) as alice, Client(server) as bob:
        for client in (alice, bob):
            client.established()
            client.subscribe_private("private-chat.1")
        alice.subscribe("lobby")
        alice.send("client-typing", {"user": "alice"}, channel="private-chat.1")
        assert bob.recv() == {
            "event": "client-typing",
            "channel": "private-chat.1",
            "data": '{"user":"alice"}',
        }
        alice.sync()  # the originator does not get its own client event back

        for channel, words in [("lobby", "only allowed on private"), ("private-chat.2", "not subscribed")]:
            alice.send("client-typing", {}, channel=channel)
            reply = alice.recv()
            assert reply["event"] == "pusher:error" and words in reply["data"]["message"], reply
        alice.send("typing", {}, channel="private-chat.1")
        assert alice.recv()["event"] == "pusher:error"

        server.hub.client_events = False
        try:
            alice.send("client-typing", {}, channel="private-chat.1")
            assert "enable this feature" in alice.recv()["data"]["message"]
        finally:
            server.hub.client_events = True
        bob.sync()


def test_sign_matches_pushers_worked_example_and_validates_input() -> None:
    # The worked example of Pusher's "authentication and authorization signatures" documentation.
    hub = PusherHub("278d425bdf160c739803", "7ad3773142a6692b25b8")
    assert hub.sign("1234.1234", "private-foobar") == (
        "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
    )
    expected = hmac.new(b"7ad3773142a6692b25b8", b"1.2:private-a", hashlib.sha256).hexdigest()
    assert hub.sign("1.2", "private-a") == f"278d425bdf160c739803:{expected}"
    for socket_id in ["1.2:private-b", "12", "1.2\n", "\uff11.\uff12", "", "a.b"]:
        assert not PusherHub.valid_socket_id(socket_id)
        with pytest.raises(ValueError):
            hub.sign(socket_id, "private-a")
    with pytest.raises(ValueError):
        hub.sign("1.2", "private-a:b")
    with pytest.raises(ValueError):
        hub.publish_nowait("private-a", "e", {}, exclude_socket_id="nope")
    with pytest.raises(ValueError):
        hub.publish_nowait("bad channel", "e", {})
    assert hub.publish_nowait("private-a", "e", {}).result(TIMEOUT) == 0  # no connection was ever served


def test_close_all_closes_every_connection_with_4200() -> None:
    hub = PusherHub(APP_KEY, APP_SECRET, rng=random.Random(1))
    with Server(hub) as srv, Client(srv) as a, Client(srv) as b:
        for client in (a, b):
            client.established()
            client.subscribe("news")
        asyncio.run(hub.close_all())
        for client in (a, b):
            with pytest.raises(ConnectionClosed) as closed:
                client.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4200
        assert hub.connections() == []


# -- the real pusher-js client -------------------------------------------------------------------------------


def _ensure_pusher_js() -> None:
    if (JS_DIR / "node_modules" / "pusher-js" / "package.json").is_file():
        return
    # npm ci installs exactly what package-lock.json pins (and fails if it disagrees with package.json).
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="node and npm are needed to run the real pusher-js client",
)
def test_real_pusher_js_client_subscribes_receives_and_is_excluded(server: Server, tmp_path: Path) -> None:
    _ensure_pusher_js()
    command = ["node", "pusher_client.mjs", "--port", str(server.port), "--key", APP_KEY, "--token", TOKEN]
    command += ["--channel", "private-user.42", "--channel", "private-forged.1"]
    command += ["--events", "2", "--timeout-ms", str(int(TIMEOUT * 1000))]
    log = tmp_path / "pusher-js.log"  # its debug log, in a file so a chatty client can never block on a pipe
    with log.open("w") as stderr:
        process = subprocess.Popen(command, cwd=JS_DIR, stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(json.loads(line))
        lines.put(None)  # end of output

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()

    def next_line() -> dict[str, Any]:
        line = lines.get(timeout=TIMEOUT)
        assert line is not None, "pusher-js client exited early"
        assert line["type"] != "timeout", "pusher-js client timed out"
        return line

    try:
        seen: list[dict[str, Any]] = []
        while not (
            any(line["type"] == "connected" for line in seen)
            and {"type": "subscribed", "channel": "private-user.42"} in seen
            and any(line["type"] == "error" for line in seen)
        ):
            seen.append(next_line())
        (connected,) = [line for line in seen if line["type"] == "connected"]
        socket_id = connected["socket_id"]
        (described,) = [c for c in server.hub.connections() if c["socket_id"] == socket_id]
        assert described["channels"] == ["private-user.42"]
        assert described["client"] == "js" and described["protocol"] == 7
        # The forged signature is refused as Pusher refuses it; pusher-js reports it as a connection error.
        (error,) = [line for line in seen if line["type"] == "error"]
        expected = f"Invalid signature: Expected HMAC SHA256 hex digest of {socket_id}:private-forged.1"
        assert error["error"] == {
            "type": "PusherError",
            "data": {"code": None, "message": f"{expected}, but got {FORGED}"},
        }

        channel, event = "private-user.42", "App\\Events\\UserPush"
        assert publish(server, channel, event, {"push": 1, "text": "for everyone"}) == 1
        assert publish(server, channel, event, {"push": 2}, exclude=socket_id) == 0
        assert publish(server, channel, event, {"push": 3, "text": "again"}) == 1
        events = [next_line(), next_line()]
        assert events == [
            {
                "type": "event",
                "channel": channel,
                "event": event,
                "data": {"push": 1, "text": "for everyone"},
            },
            {"type": "event", "channel": channel, "event": event, "data": {"push": 3, "text": "again"}},
        ]
        assert next_line() == {"type": "done"}
        assert process.wait(TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(TIMEOUT)
        reader.join(TIMEOUT)  # the pipe is at its end once the process has gone
        assert process.stdout is not None
        process.stdout.close()
        print(log.read_text())  # shown by pytest only if the test failed
