"""Replicas build a push only for a channel someone listens on, on any replica (`mockserver.fanout`): each counts its
subscriptions in Redis before confirming them, and each request reads the counts with its view's catch-up."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from mockserver.fanout import RedisFanout
from mockserver.push import PusherHub
from mockserver.store.redis_turns import TurnPipeline
from mockserver.testing import start_mock
from tests.mockserver.store.test_store_contract import REDIS_URL, needs_redis

pytestmark = needs_redis

CHANNEL = "private-user.13"


@pytest.fixture
def pair() -> Iterator[tuple[RedisFanout, RedisFanout]]:
    namespace = f"test-fanout-{uuid.uuid4().hex}"
    fanouts = [
        RedisFanout(PusherHub("key", "secret"), REDIS_URL, namespace, TurnPipeline(REDIS_URL, timeout=1))
        for _ in range(2)
    ]
    yield fanouts[0], fanouts[1]
    for fanout in fanouts:
        fanout.close()
    redis.Redis.from_url(REDIS_URL).delete(f"{namespace}:push-channels")


async def _as_a_request(fanout: RedisFanout, channel: str) -> bool:
    """What ``fanout`` answers about ``channel`` in a request (in a task of its own, as each request is)."""

    async def request() -> bool:
        await fanout.listening(fanout.refresh())
        return fanout.has_subscribers(channel)

    return await asyncio.create_task(request())


def test_a_subscription_counted_on_one_replica_is_seen_by_the_next_request_on_the_other(
    pair: tuple[RedisFanout, RedisFanout],
) -> None:
    mine, theirs = pair

    async def run() -> list[bool]:
        seen = [await _as_a_request(mine, CHANNEL)]
        await theirs.joined(CHANNEL)  # counted before the client hears its subscription succeeded
        seen += [await _as_a_request(mine, CHANNEL), await _as_a_request(mine, "private-user.14")]
        theirs.left(CHANNEL)
        deadline = time.monotonic() + 5
        while await _as_a_request(mine, CHANNEL) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the uncount is sent without waiting for it
        seen.append(await _as_a_request(mine, CHANNEL))
        await mine._turns.aclose()
        await theirs._turns.aclose()
        return seen

    assert asyncio.run(run()) == [False, True, False, False]


def test_outside_a_request_a_push_is_built_as_if_someone_listened(pair: tuple[RedisFanout, RedisFanout]) -> None:
    mine, _ = pair
    assert mine.has_subscribers(CHANNEL)


def test_a_replica_closing_uncounts_its_subscriptions(pair: tuple[RedisFanout, RedisFanout]) -> None:
    mine, theirs = pair

    async def run() -> bool:
        await theirs.joined(CHANNEL)
        await theirs.joined(CHANNEL)
        await theirs._turns.aclose()
        theirs.close()
        answer = await _as_a_request(mine, CHANNEL)
        await mine._turns.aclose()
        return answer

    assert asyncio.run(run()) is False


def test_a_create_nobody_listens_for_publishes_no_push() -> None:
    namespace = f"test-fanout-{uuid.uuid4().hex}"
    published: list[Any] = []
    with start_mock(seed=0, state_path=f"{REDIS_URL}?namespace={namespace}") as mock:
        fanout = mock.runtime.fanout
        assert fanout is not None
        publish = fanout.publish_nowait
        fanout.publish_nowait = lambda *args, **kwargs: published.append(args) or publish(*args, **kwargs)  # type: ignore[method-assign]
        headers = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "fanout"}
        with mock.client("vms", headers=headers) as vms:
            created = vms.post(
                "/api/v1/intercom/180/codes", json={"title": "nobody listens", "expired_at": "2031-01-01 00:00"}
            )
        assert created.status_code == 200, created.text
        store = mock.runtime.building.store
    assert published == []
    store.clear()  # type: ignore[attr-defined]
