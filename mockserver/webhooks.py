"""Magicline webhooks: access-medium changes POSTed to registered targets as the vendor delivers them, with
retries and exponential backoff on the simulated clock, and a delivery log."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from .domain.events import Event, MediumChanged

if TYPE_CHECKING:
    from .domain.clock import Clock

log = logging.getLogger("mockserver.webhooks")

#: attempts per delivery (the first one included), and the wait before the second
MAX_ATTEMPTS = 6
FIRST_BACKOFF_SECONDS = 30


@dataclass
class Webhook:
    id: str
    url: str
    studio_id: int
    api_key: str


@dataclass
class Delivery:
    """One attempt, as the control API lists it."""

    webhook_id: str
    uuid: str
    attempt: int
    at: str
    status: int | None
    error: str | None = None
    next_attempt_at: str | None = None


@dataclass
class _Pending:
    webhook: Webhook
    body: dict[str, Any]
    attempt: int = 0
    due: float = 0.0
    history: list[Delivery] = field(default_factory=list)


class Webhooks:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._hooks: dict[str, Webhook] = {}
        self._ids = itertools.count(1)
        self._pending: list[_Pending] = []
        self._log: list[Delivery] = []
        self._pumping = False
        self._again = False
        self.loop: asyncio.AbstractEventLoop | None = None

    # --- registry

    def register(self, url: str, studio_id: int, api_key: str | None = None) -> Webhook:
        with self._lock:
            hook = Webhook(
                id=f"webhook-{next(self._ids)}",
                url=url,
                studio_id=studio_id,
                api_key=api_key or uuid.uuid4().hex,
            )
            self._hooks[hook.id] = hook
            return hook

    def remove(self, webhook_id: str) -> bool:
        with self._lock:
            return self._hooks.pop(webhook_id, None) is not None

    def all(self) -> list[Webhook]:
        with self._lock:
            return list(self._hooks.values())

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(d) for d in self._log]

    def clear(self) -> None:
        with self._lock:
            self._hooks.clear()
            self._pending.clear()
            self._log.clear()

    # --- events in, deliveries out

    def on_event(self, event: Event) -> None:
        if not isinstance(event, MediumChanged):
            return
        now = self.clock.timestamp()
        body = {
            "entityId": event.customer_id,
            "uuid": str(uuid.uuid4()),
            "payload": [
                {
                    "timestamp": int(event.at.timestamp() * 1000),
                    "type": f"CUSTOMER_ACCESS_MEDIUM_{event.change}",
                    "content": event.medium,
                }
            ],
        }
        with self._lock:
            targets = [h for h in self._hooks.values() if h.studio_id == event.studio_id]
            for hook in targets:
                self._pending.append(_Pending(webhook=hook, body=body, due=now))
        if targets:
            self.wake()

    def wake(self) -> None:
        """Attempt what is due now, on the server's loop (safe to call from any thread)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.pump()))

    async def pump(self) -> int:
        """Attempt every delivery that is due on the simulated clock; answers how many were attempted."""
        if self._pumping:
            self._again = True  # the running pump looks once more when it is done, so no wake is lost
            return 0
        self._pumping = True
        attempted = 0
        tried: set[int] = set()  # one attempt per delivery and pump; a due retry waits for the next wake
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                while True:
                    self._again = False
                    now = self.clock.timestamp()
                    with self._lock:
                        due = [p for p in self._pending if p.due <= now and id(p) not in tried]
                    for pending in due:
                        tried.add(id(pending))
                        await self._attempt(client, pending)
                        attempted += 1
                    if not due or not self._again:
                        break
        finally:
            self._pumping = False
        return attempted

    async def _attempt(self, client: httpx.AsyncClient, pending: _Pending) -> None:
        pending.attempt += 1
        now = self.clock.now()
        status: int | None = None
        problem: str | None = None
        try:
            response = await client.post(
                pending.webhook.url, json=pending.body, headers={"X-API-KEY": pending.webhook.api_key}
            )
            status = response.status_code
            if not 200 <= status < 300:
                problem = f"target answered {status}"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        done = problem is None or pending.attempt >= MAX_ATTEMPTS
        next_at: str | None = None
        with self._lock:
            if done:
                if pending in self._pending:
                    self._pending.remove(pending)
            else:
                backoff = FIRST_BACKOFF_SECONDS * 2 ** (pending.attempt - 1)
                pending.due = now.timestamp() + backoff
                next_at = datetime.fromtimestamp(pending.due, UTC).isoformat()
            self._log.append(
                Delivery(
                    webhook_id=pending.webhook.id,
                    uuid=pending.body["uuid"],
                    attempt=pending.attempt,
                    at=now.isoformat(),
                    status=status,
                    error=problem,
                    next_attempt_at=next_at,
                )
            )
        if problem:
            log.info("webhook %s attempt %d failed: %s", pending.webhook.url, pending.attempt, problem)
