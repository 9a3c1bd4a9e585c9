"""How fast a run may go: one request rate for every thread of a run, and when to try a throttled request again
(a 429 waits for `Retry-After`; a 429 or 503 without it backs off exponentially)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = ["RetryPolicy", "Throttle", "parse_retry_after"]


class Throttle:
    """At most `rate` requests per second across every thread of a run (0 means no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - time.time())


@dataclass
class RetryPolicy:
    """When to try a throttled request again."""

    max_retries: int = 3
    #: a longer `Retry-After` is not waited for: the 429 stands as the answer (it is a documented one)
    max_wait: float = 60.0
    backoff: float = 1.0

    def delay(self, status: int, retry_after: str | None, attempt: int) -> float | None:
        if status not in (429, 503) or attempt >= self.max_retries:
            return None
        wait = parse_retry_after(retry_after)
        if wait is None:
            wait = self.backoff * (2**attempt)
        return wait if wait <= self.max_wait else None
