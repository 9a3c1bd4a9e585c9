"""The server side of the Pusher Channels websocket protocol (version 7), as Laravel broadcasting speaks it.

The AIPIX VMS pushes events to its users the way Laravel broadcasting does: clients (pusher-js, Laravel Echo,
the vendor's SDKs) open ``ws://host/app/{app_key}?protocol=7&client=js&version=...``, receive a socket id,
authorize private channels through the API (``POST /api/v1/broadcasting/auth`` answers ``{"auth": ...}``,
made here by :meth:`PusherHub.sign`) and subscribe with that signature. :class:`PusherHub` is that websocket
server and nothing more: it knows channels and signatures, never VMS business rules.

Wire format, as the Pusher Channels protocol documentation (pusher/docs, "Pusher Channels Protocol") and the
official pusher-js client define it::

    -> {"event": "pusher:connection_established",
        "data": "{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}
    <- {"event": "pusher:ping", "data": {}}            -> {"event": "pusher:pong", "data": "{}"}
    <- {"event": "pusher:subscribe", "data": {"channel": "private-user.7", "auth": "<key>:<hex hmac>"}}
    -> {"event": "pusher_internal:subscription_succeeded", "channel": "private-user.7", "data": "{}"}
    -> {"event": "pusher:error", "data": {"code": null, "message": "Invalid signature: ..."}}  (bad auth)
    -> {"event": "App\\Events\\UserPush", "channel": "private-user.7", "data": "{...json...}"}

Connection-level refusals (unknown app key 4001, unsupported protocol 4007) send ``pusher:error`` with the
code and then close the websocket with the same code, so a client sees the code whichever way it reads it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import hmac
import json
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

#: Pusher retired protocols 1-3; 4-7 differ only in ways this server already covers (it always sends
#: ``pusher:error`` before closing, which protocols below 6 rely on, and answers ``pusher:ping``).
SUPPORTED_PROTOCOLS = frozenset({4, 5, 6, 7})

# Close codes from the protocol's error table: 40xx = do not reconnect unchanged, 41xx = reconnect after
# backing off, 42xx = reconnect at once.
APP_DOES_NOT_EXIST = 4001
UNSUPPORTED_PROTOCOL = 4007
OVER_CAPACITY = 4100
RECONNECT_NOW = 4200

#: Messages queued for one connection before it is considered stuck and closed (see ``_Connection.push``).
MAX_QUEUED = 1000

# ASCII classes on purpose: ``\d`` would also accept other scripts' digits, which Pusher's ids never hold.
_SOCKET_ID = re.compile(r"[0-9]+\.[0-9]+")
# Pusher's channel naming rule: letters, digits and ``_ - = @ , . ;``, at most 164 characters.
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9_\-=@,.;]{1,164}")
_MAX_EVENT_NAME = 200  # Pusher's HTTP API refuses longer event names
_PROTOCOL = re.compile(r"[0-9]{1,3}")


def valid_channel_name(name: object) -> bool:
    return isinstance(name, str) and _CHANNEL_NAME.fullmatch(name) is not None


def _encode(message: object) -> str:
    return json.dumps(message, separators=(",", ":"))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


@dataclass(eq=False)
class _Connection:
    socket_id: str
    websocket: WebSocket
    protocol: int
    client: str | None
    version: str | None
    channels: set[str] = field(default_factory=set)
    # Everything sent to the client goes through this queue and one writer task, so frames leave in the order
    # they were produced even when publishes, replies and client events interleave.
    outbox: asyncio.Queue[str | _Close] = field(default_factory=asyncio.Queue)
    closing: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, frame: str) -> bool:
        """Queue a frame; False if the connection is closing and will not get it."""
        if self.closing:
            return False
        if self.outbox.qsize() >= MAX_QUEUED:
            # A client that stopped reading must not grow the server's memory without bound. 4100 tells
            # pusher-js to reconnect after backing off, which also resynchronises its subscriptions.
            self.close(OVER_CAPACITY, "Over capacity")
            return False
        self.outbox.put_nowait(frame)
        return True

    def send(self, message: dict[str, Any]) -> None:
        self.push(_encode(message))

    def error(self, message: str, code: int | None = None) -> None:
        # Pusher sends non-fatal errors with a null code and an object (not a string) as data.
        self.send({"event": "pusher:error", "data": {"code": code, "message": message}})

    def close(self, code: int, reason: str) -> None:
        if not self.closing:
            self.closing = True
            self.outbox.put_nowait(_Close(code, reason))


class Pushes(Protocol):
    """Where pushes go: this mock's own `PusherHub`, or `mockserver.fanout.RedisFanout` when replicas share one
    building."""

    def has_subscribers(self, channel: str) -> bool: ...

    def publish_nowait(self, channel: str, event: str, data: Any, exclude_socket_id: str | None = None) -> object: ...


class ChannelPresence(Protocol):
    """Tells other processes which channels a hub's connections listen on (`mockserver.fanout.RedisFanout`, for
    replicas), so that they build a push only for a channel someone listens on somewhere."""

    async def joined(self, channel: str) -> None:
        """A connection subscribed: known to the others before the subscription is confirmed to the client."""
        ...

    def left(self, channel: str) -> None:
        """A connection unsubscribed or went away."""
        ...


class PusherHub:
    """A Pusher-protocol websocket server for one app (key + secret), to mount at ``/app/{app_key}``.

    Connections live on the event loop that runs :meth:`endpoint`; :meth:`publish_nowait` may be called from
    any thread (domain code is synchronous) and hands delivery to that loop.
    """

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        activity_timeout: int = 120,
        *,
        rng: random.Random | None = None,
        client_events: bool = True,
    ) -> None:
        if not app_key or ":" in app_key:
            raise ValueError("app_key must be non-empty and free of ':' (it prefixes 'key:signature')")
        if activity_timeout <= 0:
            raise ValueError("activity_timeout must be a positive number of seconds")
        self.app_key = app_key
        self._secret = app_secret.encode()
        self.activity_timeout = activity_timeout
        #: Apps may switch client events (``client-*`` on private channels) off; then they are refused.
        self.client_events = client_events
        # Socket ids come from this generator so tests can seed it and get the same ids on every run.
        self._rng = rng if rng is not None else random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: dict[str, _Connection] = {}
        # Mutations happen on the loop; the lock lets connections() be read safely from worker threads.
        self._lock = threading.Lock()
        #: who else is told which channels are listened on (replicas); None for a mock alone
        self.presence: ChannelPresence | None = None

    # -- signatures ------------------------------------------------------------------------------------------

    @staticmethod
    def valid_socket_id(socket_id: str) -> bool:
        """Whether ``socket_id`` has Pusher's form ``digits.digits`` (for validating API input)."""
        return isinstance(socket_id, str) and _SOCKET_ID.fullmatch(socket_id) is not None

    def sign(self, socket_id: str, channel_name: str) -> str:
        """The ``auth`` value for a private channel subscription: ``app_key:hex(HMAC-SHA256)``.

        The caller (the API's broadcasting/auth handler) must first check that the user may join the channel.
        Both inputs are validated because they are joined with ':' before signing: an id like ``1.2:x`` would
        otherwise let one signature stand for another channel.
        """
        if not self.valid_socket_id(socket_id):
            raise ValueError(f"invalid socket id {socket_id!r}")
        if not valid_channel_name(channel_name):
            raise ValueError(f"invalid channel name {channel_name!r}")
        return f"{self.app_key}:{self._signature(socket_id, channel_name)}"

    def _signature(self, socket_id: str, channel: str) -> str:
        return hmac.new(self._secret, f"{socket_id}:{channel}".encode(), hashlib.sha256).hexdigest()

    def _auth_problem(self, socket_id: str, channel: str, auth: object) -> str | None:
        """Why ``auth`` fails for ``socket_id`` on ``channel``, in Pusher's wording; None if it is valid."""
        key, _, signature = (auth if isinstance(auth, str) else "").partition(":")
        if key != self.app_key:
            return f"Invalid key in subscription auth data: '{key[:100]}'"
        expected = self._signature(socket_id, channel)
        # Constant time, and on bytes: compare_digest refuses non-ASCII str, which a client may well send.
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return (
                f"Invalid signature: Expected HMAC SHA256 hex digest of {socket_id}:{channel}, "
                f"but got {signature[:100]}"
            )
        return None

    # -- the websocket endpoint ------------------------------------------------------------------------------

    async def endpoint(self, websocket: WebSocket) -> None:
        """Serve one client connection until it disconnects (Starlette websocket handler)."""
        self._loop = asyncio.get_running_loop()
        await websocket.accept()
        if websocket.path_params.get("app_key") != self.app_key:
            await self._refuse(websocket, APP_DOES_NOT_EXIST, "Application does not exist")
            return
        # The protocol says a missing version means protocol 1, which is no longer supported: so 4007 too.
        raw = websocket.query_params.get("protocol") or ""
        protocol = int(raw) if _PROTOCOL.fullmatch(raw) else 0
        if protocol not in SUPPORTED_PROTOCOLS:
            await self._refuse(websocket, UNSUPPORTED_PROTOCOL, "Unsupported protocol version")
            return

        conn = self._register(websocket, protocol)
        writer = asyncio.create_task(self._write_loop(conn))
        try:
            # The data of connection_established is itself a JSON string (the protocol's "double encoding").
            established = {"socket_id": conn.socket_id, "activity_timeout": self.activity_timeout}
            conn.send({"event": "pusher:connection_established", "data": _encode(established)})
            await self._read_loop(conn)
        finally:
            with self._lock:
                self._connections.pop(conn.socket_id, None)
                left = list(conn.channels)
            if self.presence is not None:
                for channel in left:
                    self.presence.left(channel)
            writer.cancel()
            conn.finished.set()

    async def _refuse(self, websocket: WebSocket, code: int, message: str) -> None:
        # Protocol 6+ clients read the close code; the pusher:error before it is what older protocols and
        # websocket APIs without close codes rely on, and pusher-js's handshake understands it too.
        await websocket.send_text(_encode({"event": "pusher:error", "data": {"code": code, "message": message}}))
        await websocket.close(code=code, reason=message)

    def _register(self, websocket: WebSocket, protocol: int) -> _Connection:
        while True:  # ids must be unique among live connections; a repeat from the generator is just skipped
            socket_id = f"{self._rng.randrange(1, 10**6)}.{self._rng.randrange(1, 10**8)}"
            if socket_id not in self._connections:
                break
        conn = _Connection(
            socket_id=socket_id,
            websocket=websocket,
            protocol=protocol,
            client=websocket.query_params.get("client"),
            version=websocket.query_params.get("version"),
        )
        with self._lock:
            self._connections[socket_id] = conn
        return conn

    @staticmethod
    async def _write_loop(conn: _Connection) -> None:
        try:
            while True:
                item = await conn.outbox.get()
                if isinstance(item, _Close):
                    await conn.websocket.close(code=item.code, reason=item.reason)
                    return
                await conn.websocket.send_text(item)
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The client went away mid-send; the read loop sees the disconnect and unregisters the connection.
            return

    async def _read_loop(self, conn: _Connection) -> None:
        while True:
            message = await conn.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                conn.error("Binary frames are not supported; send UTF-8 JSON text")
            else:
                await self._handle(conn, text)

    async def _handle(self, conn: _Connection, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("event"), str):
            conn.error("Invalid message: expected a JSON object with an 'event' name")
            return
        event: str = message["event"]
        data = message.get("data")
        if event == "pusher:ping":
            conn.send({"event": "pusher:pong", "data": "{}"})
        elif event == "pusher:pong":
            pass  # an answer to a ping; any traffic proves the connection alive
        elif event == "pusher:subscribe":
            await self._subscribe(conn, _as_object(data))
        elif event == "pusher:unsubscribe":
            channel = _as_object(data).get("channel")
            if isinstance(channel, str):
                with self._lock:
                    listened = channel in conn.channels
                    conn.channels.discard(channel)  # Pusher sends no reply to an unsubscribe
                if listened and self.presence is not None:
                    self.presence.left(channel)
        elif event.startswith("client-"):
            self._client_event(conn, event, message.get("channel"), data)
        else:
            conn.error(f"Unsupported event: {event[:_MAX_EVENT_NAME]}")

    async def _subscribe(self, conn: _Connection, data: dict[str, Any]) -> None:
        channel = data.get("channel")
        if not isinstance(channel, str) or not valid_channel_name(channel):
            conn.error(f"Invalid channel name: {str(channel)[:200]}")
            return
        if channel.startswith("presence-"):
            conn.error("Presence channels are not supported by this server")
            return
        if channel.startswith("private-encrypted-"):
            conn.error("Encrypted channels are not supported by this server")
            return
        if channel.startswith("private-"):
            problem = self._auth_problem(conn.socket_id, channel, data.get("auth"))
            if problem:
                conn.error(problem)
                return
        if channel in conn.channels:
            conn.error(f"Existing subscription to channel {channel}")
            return
        with self._lock:
            conn.channels.add(channel)
        if self.presence is not None:
            # Before the confirmation: a change the client causes once subscribed is pushed by whichever replica
            # it reaches.
            await self.presence.joined(channel)
        conn.send({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"})

    def _client_event(self, conn: _Connection, event: str, channel: object, data: object) -> None:
        # The protocol allows client events only on authorized channels, from a subscriber, never echoed back.
        if not self.client_events:
            conn.error("To send client events, you must enable this feature in the Settings page of your dashboard.")
        elif len(event) > _MAX_EVENT_NAME:
            conn.error("Client event rejected: event name too long")
        elif not isinstance(channel, str) or not channel.startswith("private-"):
            conn.error("Client event rejected: client events are only allowed on private channels")
        elif channel not in conn.channels:
            conn.error(f"Client event rejected: not subscribed to channel {channel}")
        else:
            self._deliver(channel, self._frame(channel, event, data), exclude_socket_id=conn.socket_id)

    # -- publishing ------------------------------------------------------------------------------------------

    @staticmethod
    def _frame(channel: str, event: str, data: object) -> str:
        # Pusher delivers event data as a string: JSON-encoded unless the publisher already passed a string.
        return _encode({"event": event, "channel": channel, "data": data if isinstance(data, str) else _encode(data)})

    def has_subscribers(self, channel: str) -> bool:
        """Whether any connection listens on ``channel`` (lets publishers skip building a message nobody gets)."""
        with self._lock:
            return any(channel in conn.channels for conn in self._connections.values())

    def _deliver(self, channel: str, frame: str, exclude_socket_id: str | None) -> int:
        """Queue ``frame`` for every subscriber of ``channel`` except one; runs on the hub's loop only."""
        delivered = 0
        for conn in list(self._connections.values()):
            if channel in conn.channels and conn.socket_id != exclude_socket_id and conn.push(frame):
                delivered += 1
        return delivered

    def publish_nowait(
        self,
        channel: str,
        event: str,
        data: dict[str, Any] | list[Any] | str,
        exclude_socket_id: str | None = None,
    ) -> concurrent.futures.Future[int]:
        """Publish from any thread without waiting; the future gives how many connections were sent it.

        ``data`` is encoded at once, so the caller may change it afterwards. Publishes from one thread reach
        each connection in call order. ``exclude_socket_id`` (the request's X-Socket-ID) is the connection
        that made the change and must not get its own push. Invalid names or socket id raise ValueError, as
        Pusher's server libraries do.
        """
        if not valid_channel_name(channel):
            raise ValueError(f"invalid channel name {channel!r}")
        if not event or len(event) > _MAX_EVENT_NAME:
            raise ValueError(f"event name must be 1-{_MAX_EVENT_NAME} characters")
        if exclude_socket_id is not None and not self.valid_socket_id(exclude_socket_id):
            raise ValueError(f"invalid socket id {exclude_socket_id!r}")
        frame = self._frame(channel, event, data)
        result: concurrent.futures.Future[int] = concurrent.futures.Future()

        def deliver() -> None:
            try:
                result.set_result(self._deliver(channel, frame, exclude_socket_id))
            except BaseException as exc:  # hand any failure to whoever waits on the future
                result.set_exception(exc)

        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            result.set_result(0)  # no loop serving connections, so nobody is subscribed
        elif _running_loop() is loop:
            deliver()
        else:
            try:
                loop.call_soon_threadsafe(deliver)  # FIFO, so one thread's publishes keep their order
            except RuntimeError:  # the loop closed since the check above
                result.set_result(0)
        return result

    async def publish(
        self,
        channel: str,
        event: str,
        data: dict[str, Any] | list[Any] | str,
        exclude_socket_id: str | None = None,
    ) -> int:
        """Publish and return how many connections were sent the event; callable from any event loop."""
        return await asyncio.wrap_future(self.publish_nowait(channel, event, data, exclude_socket_id))

    # -- inspection and shutdown -----------------------------------------------------------------------------

    def connections(self) -> list[dict[str, Any]]:
        """A snapshot of the live connections, for a control/debug API; safe from any thread."""
        with self._lock:
            return [
                {
                    "socket_id": conn.socket_id,
                    "channels": sorted(conn.channels),
                    "protocol": conn.protocol,
                    "client": conn.client,
                    "version": conn.version,
                }
                for conn in self._connections.values()
            ]

    async def close_all(
        self, code: int = RECONNECT_NOW, reason: str = "Server shutting down", timeout: float = 5.0
    ) -> None:
        """Close every connection (by default 4200, "reconnect now"); wait up to ``timeout`` s for them."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return
        if _running_loop() is not loop:
            future = asyncio.run_coroutine_threadsafe(self.close_all(code, reason, timeout), loop)
            await asyncio.wrap_future(future)
            return
        conns = list(self._connections.values())
        for conn in conns:
            conn.close(code, reason)
        waiters = [asyncio.ensure_future(conn.finished.wait()) for conn in conns]
        if waiters:
            _, pending = await asyncio.wait(waiters, timeout=timeout)
            for waiter in pending:
                waiter.cancel()


def _as_object(data: object) -> dict[str, Any]:
    """A ``pusher:`` event's data as a dict: clients send an object, some send it JSON-encoded as a string."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return {}
    return data if isinstance(data, dict) else {}
