"""Pushes through Redis pub/sub, so that a websocket on any replica gets what any replica publishes.

Every replica publishes its pushes to one Redis channel per namespace and delivers what that channel carries to
its own websockets, its own pushes included; the socket id to leave out travels with the message, so the
`X-Socket-ID` exclusion holds whichever replica the excluded connection is on. The pushes of one send (`TurnBatch`)
travel as one message, a JSON list: every replica reads every message, and one message per push cost each of them
a trip through redis-py's pub/sub parsing per push (a replica answering VMS creates spent ~5% of its interpreter
time listening).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import orjson
import redis

from .push import PusherHub
from .turn_batch import TurnBatch


class RedisFanout:
    def __init__(self, hub: PusherHub, url: str, namespace: str) -> None:
        self.hub = hub
        self.channel = f"{namespace}:push"
        self._redis = redis.Redis.from_url(url)
        self._pubsub = self._redis.pubsub()
        self._pubsub.subscribe(self.channel)
        # Wait for Redis to confirm, so that nothing published once the mock answers is missed.
        confirmed = self._pubsub.get_message(timeout=5)
        if confirmed is None or confirmed.get("type") != "subscribe":
            raise RuntimeError(f"Redis did not confirm the subscription to {self.channel}")
        self._batch: TurnBatch[bytes] = TurnBatch(self._send, "pushes")
        self._thread = threading.Thread(target=self._listen, name="doorcodes-fanout", daemon=True)
        self._thread.start()

    @staticmethod
    def has_subscribers(channel: str) -> bool:
        """Another replica may have subscribers: always build the message."""
        return True

    def publish_nowait(self, channel: str, event: str, data: Any, exclude_socket_id: str | None = None) -> None:
        self._batch.add(orjson.dumps([channel, event, data, exclude_socket_id]))

    def _send(self, pushes: list[bytes]) -> None:
        self._redis.publish(self.channel, b"[" + b",".join(pushes) + b"]")

    def _listen(self) -> None:
        with contextlib.suppress(redis.ConnectionError, ValueError):  # closed at shutdown
            for message in self._pubsub.listen():
                if message.get("type") != "message":
                    continue
                for channel, event, data, exclude in orjson.loads(message["data"]):
                    # Nobody on this replica listens (mostly so): no frame to build, no wake-up of the event loop
                    # from this thread. A subscription made before the push was caused is seen here.
                    if self.hub.has_subscribers(channel):
                        self.hub.publish_nowait(channel, event, data, exclude_socket_id=exclude)

    def close(self) -> None:
        self._batch.close()
        with contextlib.suppress(redis.RedisError):
            self._pubsub.close()
            self._redis.close()
