"""Pushes through Redis pub/sub, so that a websocket on any replica gets what any replica publishes.

Every replica publishes its pushes to one Redis channel per namespace and delivers what that channel carries to
its own websockets, its own pushes included; the socket id to leave out travels with the message, so the
`X-Socket-ID` exclusion holds whichever replica the excluded connection is on. The pushes of one send (`TurnBatch`)
travel as one message, a JSON list: every replica reads every message, and one message per push cost each of them
a trip through redis-py's pub/sub parsing per push (a replica answering VMS creates spent ~5% of its interpreter
time listening).

A push is built only for a channel someone listens on, on any replica: each replica counts its subscriptions in a
Redis hash (``{namespace}:push-channels``, channel -> connections), written before the subscription is confirmed to
the client, and each request reads that hash in its turn's pipeline (`refresh`, with the view's catch-up). A change
a client causes after its subscription was confirmed is therefore pushed, whichever replica each reaches; events
raised outside a request (a clock moved from a test's thread) are pushed as if someone listened. A replica that
dies leaves its counts behind: pushes for those channels are built for nobody, which costs time, not correctness.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import threading
from typing import Any

import orjson
import redis

from .push import PusherHub
from .store.redis_turns import TurnPipeline
from .turn_batch import TurnBatch

log = logging.getLogger("mockserver")

#: the channels listened on anywhere, as the current request's turn read them (None: not known here)
_LISTENING: contextvars.ContextVar[frozenset[str] | None] = contextvars.ContextVar("doorcodes_listening", default=None)


class RedisFanout:
    def __init__(self, hub: PusherHub, url: str, namespace: str, turns: TurnPipeline) -> None:
        self.hub = hub
        self.channel = f"{namespace}:push"
        self._turns = turns
        self._channels_key = f"{namespace}:push-channels"
        #: this replica's subscriptions counted in Redis, per channel
        self._joined: collections.Counter[str] = collections.Counter()
        #: the read of the channels hash for the requests of the current turn of a loop
        self._turn_read: tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]] | None = None
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
        hub.presence = self

    def has_subscribers(self, channel: str) -> bool:
        """Whether a connection on any replica listens on ``channel``, as the current request's turn read it; True
        where that is not known (outside a request, or Redis did not answer)."""
        listening = _LISTENING.get()
        return listening is None or channel in listening or self.hub.has_subscribers(channel)

    def refresh(self) -> asyncio.Future[Any]:
        """Read which channels are listened on, in this turn's pipeline (one read for the turn's requests); await
        the answer in the request, whose `has_subscribers` then answers from it. Call it before awaiting anything
        else in the turn, so that the read goes with the view's catch-up."""
        loop = asyncio.get_running_loop()
        if self._turn_read is None or self._turn_read[0] is not loop:
            self._turn_read = (loop, self._turns.submit("HGETALL", self._channels_key))
            loop.call_soon(self._end_turn)
        return self._turn_read[1]

    def _end_turn(self) -> None:
        self._turn_read = None

    async def listening(self, read: asyncio.Future[Any]) -> None:
        """Take what `refresh` read, for the rest of the current request."""
        try:
            flat: Any = await asyncio.shield(read)
        except (redis.RedisError, OSError):
            _LISTENING.set(None)
            return
        # A map under RESP3, a flat list of names and values under RESP2.
        counts = flat.items() if isinstance(flat, dict) else zip(flat[::2], flat[1::2], strict=True)
        _LISTENING.set(frozenset(channel for channel, count in counts if int(count) > 0))

    async def joined(self, channel: str) -> None:
        """Count a subscription of this replica's (`ChannelPresence`), before it is confirmed."""
        try:
            await self._turns.submit("HINCRBY", self._channels_key, channel, 1)
        except (redis.RedisError, OSError) as exc:
            log.warning("other replicas will not push to %s here: Redis did not count it: %s", channel, exc)
            return
        self._joined[channel] += 1

    def left(self, channel: str) -> None:
        """Uncount one (`ChannelPresence`); only what was counted (after `close`, nothing is counted)."""
        if self._joined[channel] <= 0:
            self._joined.pop(channel, None)
            return
        self._joined[channel] -= 1
        if not self._joined[channel]:
            del self._joined[channel]
        self._turns.submit("HINCRBY", self._channels_key, channel, -1)  # its answer is nobody's to wait for

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
        """Uncount what this replica still counts (its connections end with it), send what is left, disconnect."""
        if self._joined:
            with contextlib.suppress(redis.RedisError), self._redis.pipeline(transaction=False) as pipe:
                for channel, count in self._joined.items():
                    pipe.hincrby(self._channels_key, channel, -count)
                pipe.execute()
            self._joined.clear()
        self._batch.close()
        with contextlib.suppress(redis.RedisError):
            self._pubsub.close()
            self._redis.close()
