"""What a replica awaits from Redis goes out once per turn of the event loop: the views' catch-up and the rate-limit
counts of one turn in one pipelined write (`mockserver.store.redis_turns`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from mockserver.shared_state import RedisLimiter
from mockserver.store.redis_store import RedisStore
from mockserver.store.redis_turns import DirectScript, TurnPipeline
from tests.mockserver.store.test_store_contract import REDIS_URL, needs_redis

pytestmark = needs_redis


def _counting_sends(turns: TurnPipeline) -> list[int]:
    """Record the number of commands of each pipelined write ``turns`` makes from now on."""
    sends: list[int] = []
    execute = turns._execute

    async def counted(commands: list[Any]) -> list[Any]:
        sends.append(len(commands))
        return await execute(commands)

    turns._execute = counted  # type: ignore[method-assign]
    return sends


@pytest.fixture
def store() -> Iterator[RedisStore]:
    store = RedisStore(REDIS_URL, namespace=f"test-turns-{uuid.uuid4().hex}")
    yield store
    store.clear()
    store.close()


def test_commands_of_one_turn_go_in_one_write_and_each_caller_gets_its_own_answer() -> None:
    turns = TurnPipeline(REDIS_URL, timeout=0.5)
    sends = _counting_sends(turns)
    key = f"test-turns-{uuid.uuid4().hex}"

    async def run() -> tuple[list[Any], Any]:
        try:
            together = await asyncio.gather(
                turns.submit("SET", key, "1"), turns.submit("INCR", key), turns.submit("GET", key)
            )
            later = await turns.submit("GET", key)
            return together, later
        finally:
            await turns.aclose()

    try:
        assert asyncio.run(run()) == (["OK", 2, "2"], "2")  # raw answers: no client-side conversion
    finally:
        redis.Redis.from_url(REDIS_URL).delete(key)
    assert sends == [3, 1]


def test_a_failing_command_fails_its_own_caller_only() -> None:
    turns = TurnPipeline(REDIS_URL, timeout=0.5)
    key = f"test-turns-{uuid.uuid4().hex}"

    async def run() -> list[Any]:
        try:
            return await asyncio.gather(
                turns.submit("SET", key, "text"),
                turns.submit("INCR", key),
                turns.submit("GET", key),
                return_exceptions=True,
            )
        finally:
            await turns.aclose()

    try:
        stored, failed, read = asyncio.run(run())
    finally:
        redis.Redis.from_url(REDIS_URL).delete(key)
    assert (stored, read) == ("OK", "text")
    assert isinstance(failed, redis.ResponseError)


def test_a_script_redis_does_not_hold_is_loaded_and_run_in_the_same_send() -> None:
    turns = TurnPipeline(REDIS_URL, timeout=0.5)
    # A source no Redis has seen (a restarted Redis holds none): the first EVALSHA answers NOSCRIPT.
    sha = turns.script(f"-- {uuid.uuid4().hex}\nreturn tonumber(ARGV[1]) + 1")
    assert redis.Redis.from_url(REDIS_URL).script_exists(sha) == [False]

    async def run() -> list[Any]:
        try:
            return await asyncio.gather(turns.run_script(sha, [], [1]), turns.run_script(sha, [], [41]))
        finally:
            await turns.aclose()

    assert asyncio.run(run()) == [2, 42]


def test_redis_out_of_reach_fails_every_caller_of_the_send() -> None:
    turns = TurnPipeline("redis://127.0.0.1:1/0", timeout=0.2)

    async def run() -> list[Any]:
        try:
            return await asyncio.gather(turns.submit("GET", "a"), turns.submit("GET", "b"), return_exceptions=True)
        finally:
            await turns.aclose()

    assert all(isinstance(answer, redis.ConnectionError) for answer in asyncio.run(run()))


def test_a_turns_views_and_rate_limit_counts_share_one_write(store: RedisStore) -> None:
    limiter = RedisLimiter(REDIS_URL, store.namespace, store.turns)

    async def load_the_script() -> None:
        # A Redis that does not hold the limiter's script yet (the first test to count on a fresh Redis) answers
        # NOSCRIPT, and the script and the counts go out again: a write more, that this test is not about.
        try:
            await limiter.hit(("test", "warm-up"), limit=1, window=60, now=1000.0, aligned=True)
        finally:
            await store.turns.aclose()

    asyncio.run(load_the_script())
    sends = _counting_sends(store.turns)

    async def request(key: str) -> int:
        async with store.view():
            store.get("door", "a")
            # Counted in the next turn, with the other requests' counts: each request's wait is its own.
            return await limiter.hit(("test", key), limit=1, window=60, now=1000.0, aligned=True)

    async def requests() -> list[int]:
        try:
            return await asyncio.gather(request("x"), request("y"), request("x"))
        finally:
            await store.turns.aclose()

    try:
        assert sorted(asyncio.run(requests())) == [0, 0, 20]  # key x's second call waits out the minute (to 1020)
    finally:
        limiter.clear()
    assert sends == [1, 3]  # one catch-up for the turn's three views, then the three counts in one write


def test_closing_closes_the_connections_of_the_loop() -> None:
    turns = TurnPipeline(REDIS_URL, timeout=0.5)

    async def run() -> int:
        connection_id = int(await turns.submit("CLIENT", "ID"))
        await turns.aclose()
        return connection_id

    connection_id = asyncio.run(run())
    assert redis.Redis.from_url(REDIS_URL).execute_command("CLIENT", "LIST", "ID", connection_id) == b""


def test_a_direct_script_redis_does_not_hold_is_sent_whole_and_then_held() -> None:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    script = DirectScript(client, f"-- {uuid.uuid4().hex}\nreturn tonumber(ARGV[1]) * 2")
    try:
        assert client.script_exists(script.sha) == [False]
        assert script(keys=[], args=[21]) == 42
        assert client.script_exists(script.sha) == [True]
        assert script(keys=[], args=[5]) == 10
    finally:
        script.close()
        client.close()


def test_a_direct_script_out_of_reach_raises_and_connects_again_on_the_next_call() -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    script = DirectScript(client, "return 1")
    for _ in range(2):
        with pytest.raises(redis.ConnectionError):
            script(keys=[], args=[])
    script.close()
