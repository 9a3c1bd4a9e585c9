"""TurnBatch: writes gathered per turn of the event loop, sent by one thread; what is added while a send is under
way waits for it and goes in the next send."""

from __future__ import annotations

import asyncio
import threading

from mockserver.turn_batch import TurnBatch


def test_items_added_during_a_send_go_together_in_the_next_in_order() -> None:
    sent: list[list[int]] = []
    started, release = threading.Event(), threading.Event()

    def send(items: list[int]) -> None:
        sent.append(items)
        started.set()
        assert release.wait(10)

    batch: TurnBatch[int] = TurnBatch(send, "test items")

    async def turns() -> None:
        batch.add(0)
        batch.add(1)
        await asyncio.sleep(0)  # the turn ends: 0 and 1 go to the sender
        assert await asyncio.to_thread(started.wait, 10)
        for item in range(2, 8):  # six more turns while the first send is under way
            batch.add(item)
            await asyncio.sleep(0)

    asyncio.run(turns())
    release.set()
    batch.drain()
    assert sent == [[0, 1], [2, 3, 4, 5, 6, 7]]
    batch.close()


def test_drain_waits_for_what_was_added_while_a_send_was_under_way() -> None:
    sent: list[int] = []
    slow = threading.Event()

    def send(items: list[int]) -> None:
        slow.wait(0.05)
        sent.extend(items)

    batch: TurnBatch[int] = TurnBatch(send, "test items")
    for item in range(50):
        batch.add(item)  # outside an event loop: each is handed over at once
    batch.drain()
    assert sent == list(range(50))
    batch.close()
