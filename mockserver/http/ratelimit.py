"""Rate limits counted on the simulated clock, as each vendor counts them."""

from __future__ import annotations

import math
import threading
import typing as t


class Limiter(t.Protocol):
    """Counts calls per key in fixed windows: `FixedWindowLimiter` in memory, `mockserver.shared_state.RedisLimiter`
    for replicas that share the counts."""

    async def hit(self, key: tuple[str, ...], *, limit: int, window: float, now: float, aligned: bool) -> int:
        """Count one call; answers 0 when allowed, else the seconds until the window ends (at least 1). A
        coroutine, so a shared counter is reached without blocking the event loop."""
        ...

    def clear(self) -> None: ...


class FixedWindowLimiter:
    """At most ``limit`` calls per window and key. ``aligned`` windows start at multiples of the window length
    (Magicline: per minute); otherwise a window starts at a key's first call (Laravel's throttle)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, ...], tuple[float, int]] = {}

    async def hit(self, key: tuple[str, ...], *, limit: int, window: float, now: float, aligned: bool) -> int:
        """Count one call; answers 0 when allowed, else the seconds until the window ends (at least 1)."""
        with self._lock:
            start = math.floor(now / window) * window if aligned else now
            current = self._windows.get(key)
            if current is None or now >= current[0] + window or (aligned and current[0] != start):
                current = (start, 0)
            started, count = current
            if count >= limit:
                self._windows[key] = current
                return max(1, math.ceil(started + window - now))
            self._windows[key] = (started, count + 1)
            if len(self._windows) > 100_000:
                self._forget_old(now, window)
            return 0

    def _forget_old(self, now: float, window: float) -> None:
        self._windows = {k: v for k, v in self._windows.items() if v[0] + window > now}

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()
