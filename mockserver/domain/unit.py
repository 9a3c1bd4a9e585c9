"""The unit of work every rule of the building runs in: the store, the clock, the random source, the rules, one
lock, the events an operation raises, and settling (time-driven changes applied before an operation reads).

`UnitOfWork.operation` runs a function as one operation: under the lock, inside one store transaction, settled
first; once the outermost operation has committed, its events go to the subscribers (a refused operation raises
none and changes nothing). When the store is shared and another process committed while the operation read, the
store refuses the commit (`CommitConflict`) and the operation runs again on the newer state, for up to
`COMMIT_DEADLINE_S`; past it, `StoreUnavailable`. `UnitOfWork.write` does the same without settling.
`UnitOfWork.lookup` runs a read that time cannot change (credentials) under the lock only. The rule modules
(`credentials`, `devices`, `codes`, `customers`) hold a unit and never lock themselves:
`Building` makes each public method one operation.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from ..store.base import CommitConflict, Store, StoreUnavailable
from .clock import Clock
from .events import Event

__all__ = ["COMMIT_DEADLINE_S", "Rules", "UnitOfWork"]

T = TypeVar("T")

#: how long an operation is run again while other replicas commit first (real time: it bounds a request's wait)
COMMIT_DEADLINE_S = 1.0


@dataclass
class Rules:
    """The building's adjustable rules (not persisted: they come from configuration)."""

    #: digits in a generated keypad code (VMS generates five)
    code_length: int = 5
    #: shortest and longest codes a keypad accepts
    keypad_min_digits: int = 4
    keypad_max_digits: int = 12
    #: how long a Magicline QR access code is valid
    qr_validity_seconds: int = 300
    #: VMS sessions a user may hold before login answers 419
    vms_max_sessions: int = 50
    oauth_code_ttl_seconds: int = 600
    #: device events kept per intercom
    device_log_limit: int = 1000


class UnitOfWork:
    """What one building's operations share. See the module docstring."""

    def __init__(self, store: Store, clock: Clock, *, seed: int | None = None, rules: Rules | None = None) -> None:
        self.store = store
        self.clock = clock
        self.rules = rules or Rules()
        self.rng = random.Random(seed)
        self.lock = threading.RLock()
        self._events: list[Event] = []
        self._depth = 0
        self._subscribers: list[Callable[[Event], None]] = []
        #: applies the time-driven changes due by a moment (epoch seconds); set by the building
        self.settle: Callable[[float], None] = lambda now: None

    # ------------------------------------------------------------------ running

    def operation(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function`` as one operation (see the module docstring); nested calls join the outer one."""
        return self._run(True, function, args, kwargs)

    def write(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function`` as one operation that time does not concern: no settling first."""
        return self._run(False, function, args, kwargs)

    def _run(self, settle: bool, function: Callable[..., T], args: Any, kwargs: Any) -> T:
        with self.lock:
            if self._depth:  # a nested call belongs to an operation that has settled already
                self._depth += 1
                try:
                    with self.store.transaction():
                        return function(*args, **kwargs)
                finally:
                    self._depth -= 1
            deadline = 0.0
            while True:
                self._depth = 1
                try:
                    with self.store.transaction():
                        if settle:
                            self.settle(self.now_s())
                        result = function(*args, **kwargs)
                    break
                except CommitConflict:
                    self._events.clear()
                    now = time.monotonic()
                    deadline = deadline or now + COMMIT_DEADLINE_S
                    if now > deadline:
                        raise StoreUnavailable(f"other replicas committed first for {COMMIT_DEADLINE_S} s") from None
                except BaseException:
                    self._events.clear()
                    raise
                finally:
                    self._depth = 0
            self.publish_pending()
            return result

    def lookup(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a read no time-driven change can affect under the lock only: no transaction, no settling."""
        with self.lock:
            return function(*args, **kwargs)

    # ------------------------------------------------------------------ events

    def subscribe(self, subscriber: Callable[[Event], None]) -> None:
        self._subscribers.append(subscriber)

    def emit(self, event: Event) -> None:
        self._events.append(event)

    def discard_events(self) -> None:
        """Forget the events raised so far (the state they told of was replaced)."""
        with self.lock:
            self._events.clear()

    def publish_pending(self) -> None:
        """Hand the events collected so far to the subscribers."""
        with self.lock:
            events, self._events = self._events, []
        for event in events:
            for subscriber in self._subscribers:
                subscriber(event)

    # ------------------------------------------------------------------ time, ids and secrets

    def now(self) -> datetime:
        return self.clock.now()

    def now_s(self) -> float:
        return self.clock.timestamp()

    def now_ms(self) -> int:
        return int(self.now_s() * 1000)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def secret(self, nbytes: int = 20) -> str:
        return self.rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()
