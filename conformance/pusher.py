"""A small Pusher-protocol client, to check pushes the way an app receives them.

An app (pusher-js, Laravel Echo, the vendor's SDKs) reads `GET /api/v1/wsurl` (`host`, `port`, `path`,
`is_encrypted`, `app_key`), opens ``ws(s)://host:port{path}/app/{app_key}?protocol=7...``, gets a socket id in
`pusher:connection_established`, has the API sign ``<socket_id>:<channel>`` (`broadcasting/auth`) and subscribes
to its private channel. Only what such a client needs is here: connect, subscribe, collect events, answer pings.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

__all__ = ["PushError", "PusherSocket", "event_data", "socket_urls"]

PROTOCOL_QUERY = "?protocol=7&client=js&version=8.4.0&flash=false"


class PushError(Exception):
    """The socket could not be reached or refused the client."""


def socket_urls(info: dict[str, Any]) -> list[str]:
    """Where an app would connect, from a `wsurl` answer: pusher-js's way (host, port, path) first, then the
    `ws_url` as given."""
    key = str(info.get("app_key", ""))
    scheme = "wss" if info.get("is_encrypted") else "ws"
    urls = []
    if info.get("host") and info.get("port"):
        path = str(info.get("path") or "").rstrip("/")
        urls.append(f"{scheme}://{info['host']}:{info['port']}{path}/app/{key}{PROTOCOL_QUERY}")
    ws_url = str(info.get("ws_url") or "").rstrip("/")
    if ws_url:
        urls.append((ws_url if ws_url.endswith(f"/app/{key}") else f"{ws_url}/app/{key}") + PROTOCOL_QUERY)
    return list(dict.fromkeys(urls))


class PusherSocket:
    """One connected Pusher client."""

    def __init__(self, urls: Iterable[str], *, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self.url = ""
        self._stack = contextlib.ExitStack()
        errors = []
        for url in urls:
            try:
                self._ws: ClientConnection = self._stack.enter_context(
                    connect(url, open_timeout=timeout, close_timeout=1)
                )
            except (OSError, WebSocketException, TimeoutError) as exc:
                errors.append(f"{url.split('?')[0]}: {type(exc).__name__}: {exc}")
                continue
            self.url = url
            break
        else:
            raise PushError("; ".join(errors) or "no socket address")
        established = self.wait_for(lambda event: event.get("event") == "pusher:connection_established")
        if established is None:
            self.close()
            raise PushError(f"{self.url.split('?')[0]} sent no pusher:connection_established")
        self.socket_id = str(event_data(established).get("socket_id", ""))

    def subscribe(self, channel: str, auth: str) -> bool:
        """Join a private channel with the API's signature; whether the server confirmed it."""
        self._send({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}})
        answer = self.wait_for(
            lambda event: (
                event.get("channel") == channel
                or str(event.get("event", "")).startswith(("pusher:error", "pusher:subscription_error"))
            )
        )
        return answer is not None and answer.get("event") == "pusher_internal:subscription_succeeded"

    def wait_for(self, wanted: Callable[[dict[str, Any]], bool], timeout: float | None = None) -> dict[str, Any] | None:
        """The first event (already received or arriving within ``timeout``) that ``wanted`` accepts."""
        for event in self.events:
            if wanted(event):
                return event
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while (left := deadline - time.monotonic()) > 0:
            received = self._receive(left)
            if received is not None and wanted(received):
                return received
        return None

    def pushes(self, event_name: str) -> list[dict[str, Any]]:
        """The payloads of every received event of that name."""
        return [event_data(event) for event in self.events if event.get("event") == event_name]

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        try:
            text = self._ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        except WebSocketException as exc:
            raise PushError(f"the socket closed: {exc}") from None
        try:
            event = json.loads(text)
        except ValueError:
            return None
        if not isinstance(event, dict):
            return None
        if event.get("event") == "pusher:ping":
            self._send({"event": "pusher:pong", "data": {}})
        self.events.append(event)
        return event

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._ws.send(json.dumps(message))
        except WebSocketException as exc:
            raise PushError(f"the socket closed: {exc}") from None

    def close(self) -> None:
        with contextlib.suppress(OSError, WebSocketException):
            self._stack.close()


def event_data(event: dict[str, Any]) -> dict[str, Any]:
    """An event's data: Pusher sends it as a JSON string inside the JSON frame."""
    data = event.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return {}
    return data if isinstance(data, dict) else {}
