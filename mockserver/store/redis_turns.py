"""Redis commands a replica awaits, gathered over one turn of the event loop and sent as one pipeline.

A request on a replica waits on Redis twice at most: its view's catch-up (`RedisStore.view`) and, for the operations a
vendor rate-limits, the shared counter (`mockserver.shared_state.RedisLimiter`). Sent one by one through
`redis.asyncio`, every command is a write and a read on the socket and a trip through the client's machinery; under
load that cost the replica a third of its time (Magicline's limited GET: 28% of it in the limiter's one script call).
Here every command submitted during one turn of the loop goes out in one pipelined write when the next turn starts,
whoever submitted it, and each caller awaits its own answer. A turn that serves many requests then costs one round
trip, and a request that waits on both its catch-up and its counter shares each with the other requests of its
turn.

Scripts are sent by their SHA1 (``EVALSHA``); one that Redis does not hold (a restarted or flushed Redis) is loaded and
its commands sent again, in the same send. `DirectScript` is the blocking counterpart, for a commit and for a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError

Command = tuple[Any, ...]


class TurnPipeline:
    """Connections of one event loop (an asyncio connection belongs to the loop it was made in; tests run several
    loops one after another), and the commands submitted in the loop's current turn.

    A send takes an idle connection (or makes one), writes the turn's commands and reads their answers itself,
    under one deadline: redis-py's pipeline object, retry wrapper, per-read timeouts and pool checks cost as much
    again as the commands, once per turn."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        #: SHA1 -> source of every script registered, to load one Redis answers NOSCRIPT for
        self._scripts: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # No socket timeout on the connections: every send has its deadline (`_execute`); connecting has its own.
        self._pool = redis.asyncio.ConnectionPool.from_url(
            url, decode_responses=True, socket_timeout=None, socket_connect_timeout=timeout
        )
        self._idle: list[AbstractConnection] = []
        self._pending: list[tuple[Command, asyncio.Future[Any]]] = []
        #: sends under way (a task is only weakly referenced by its loop)
        self._sending: set[asyncio.Task[None]] = set()

    def script(self, source: str) -> str:
        """Register a Lua script; answers the SHA1 to pass to `run_script`."""
        sha = hashlib.sha1(source.encode()).hexdigest()
        self._scripts[sha] = source
        return sha

    def run_script(self, sha: str, keys: Sequence[str], args: Sequence[Any]) -> asyncio.Future[Any]:
        """`submit` a registered script's call."""
        return self.submit("EVALSHA", sha, len(keys), *keys, *args)

    def submit(self, *command: Any) -> asyncio.Future[Any]:
        """Queue one command for the send that starts the next turn; the future is its answer, or the command's
        error (a Redis out of reach or slower than ``timeout``: `redis.ConnectionError` / `redis.TimeoutError`).
        The command is queued now, not when the future is awaited: submitting in a turn is what puts it in that
        turn's send."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._idle = []  # another loop's connections: left to the collector, they cannot be used here
            self._pending = []
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((command, future))
        if len(self._pending) == 1:
            # A task's first step is scheduled like a callback: it runs at the start of the next turn, after
            # everything this turn submits.
            task = loop.create_task(self._send())
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return future

    async def _send(self) -> None:
        batch, self._pending = self._pending, []
        try:
            replies = await self._execute([command for command, _ in batch])
            missing = [at for at, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if missing:
                loads = [("SCRIPT", "LOAD", self._scripts[sha]) for sha in {batch[at][0][1] for at in missing}]
                again = await self._execute(loads + [batch[at][0] for at in missing])
                for at, reply in zip(missing, again[len(loads) :], strict=True):
                    replies[at] = reply
        except Exception as exc:  # Redis out of reach, or slower than the timeout: every caller hears of it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved: a caller that gave up waiting must not leave a warning behind
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled (a client that hung up)
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
                future.exception()
            else:
                future.set_result(reply)

    async def _execute(self, commands: list[Command]) -> list[Any]:
        """Send ``commands`` in one write and read their answers (an error reply in its command's place)."""
        connection = self._idle.pop() if self._idle else self._pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            async with asyncio.timeout(self.timeout):
                await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(await connection.read_response())
                    except ResponseError as error:
                        replies.append(error)
        except TimeoutError:
            await connection.disconnect(nowait=True)  # answers may still be on their way: never reuse it
            raise redis.TimeoutError(f"Redis at {self.url} did not answer within {self.timeout} s") from None
        except BaseException:
            await connection.disconnect(nowait=True)
            raise
        self._idle.append(connection)
        return replies

    async def aclose(self) -> None:
        """Wait for the sends under way, then close the connections, if they belong to the running loop; the
        connections of a loop that is gone have nothing left to close on."""
        loop, idle = self._loop, self._idle
        self._loop, self._idle, self._pending = None, [], []
        if loop is not asyncio.get_running_loop():
            return
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
            idle, self._idle = idle + self._idle, []
        for connection in idle:
            with contextlib.suppress(redis.RedisError, OSError):
                await connection.disconnect()


class DirectScript:
    """A Lua script called, blocking, on a connection of its own: the command written and its answer read, nothing
    else; from one thread at a time. A commit waits for Redis with the event loop blocked, and redis-py's `Script`
    (retry wrapper, command dispatch, pool checks) cost as much CPU again as writing and reading the command
    (py-spy --gil: 10% of a replica's time answering VMS creates; the journal's sender thread spent half of its
    time there). Called the way `redis.commands.core.Script` is: ``(keys=..., args=...)``."""

    def __init__(self, client: redis.Redis, source: str) -> None:
        self.source = source
        self.sha = client.register_script(source).sha
        self._connection = client.connection_pool.make_connection()

    def __call__(self, *, keys: list[str], args: list[Any]) -> Any:
        connection = self._connection
        command = connection.pack_command("EVALSHA", self.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
        try:
            connection.send_packed_command(command, check_health=False)  # type: ignore[no-untyped-call]
            try:
                return connection.read_response()
            except NoScriptError:  # a Redis that restarted or flushed its scripts: EVAL loads it again
                command = connection.pack_command("EVAL", self.source, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
                connection.send_packed_command(command, check_health=False)  # type: ignore[no-untyped-call]
                return connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()  # type: ignore[no-untyped-call]  # an answer may still come: never reuse it
            raise

    def close(self) -> None:
        self._connection.disconnect()  # type: ignore[no-untyped-call]


__all__ = ["DirectScript", "TurnPipeline"]
