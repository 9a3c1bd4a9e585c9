"""The only source of "now" in the simulated building."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

#: The simulated times the clock may show. Time is kept in epoch seconds, so nothing before 1970. Every vendor
#: writes four-digit years, and the building adds spans of its own to "now" (a QR code's validity, a door's
#: unlock time, an OAuth code's lifetime) and a running clock keeps moving: the clock stops a thousand years short
#: of 9999-12-31, so that everything the building derives from it can still be written and read back.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class ClockOutOfRange(ValueError):
    """A move that would take the clock outside `EARLIEST`..`LATEST`."""

    def __init__(self, moment: object) -> None:
        super().__init__(f"The clock cannot show {moment}: it runs from {EARLIEST.isoformat()} to {LATEST.isoformat()}")


def utc(dt: datetime) -> datetime:
    """The same instant as an aware UTC datetime (naive datetimes are taken as UTC)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+00:01 is in year 0 in UTC, which datetime cannot hold
        raise ClockOutOfRange(dt.isoformat()) from None


def _nearest_in_range(moment: datetime) -> datetime:
    return min(max(moment, EARLIEST), LATEST)


def _within_range(moment: datetime) -> datetime:
    """``moment`` in UTC, or ClockOutOfRange when the clock may not show it."""
    moment = utc(moment)
    if not EARLIEST <= moment <= LATEST:
        raise ClockOutOfRange(moment.isoformat())
    return moment


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, an aware UTC datetime."""

    def timestamp(self) -> float:
        """The current time in epoch seconds, as ``now().timestamp()``."""


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return time.time()


class ManualClock:
    """A clock that a test or the control API moves: it runs with real time from a chosen start, or stands
    still while frozen. Safe to move from another thread than the one that reads it."""

    def __init__(
        self,
        start: datetime | None = None,
        *,
        frozen: bool = False,
        on_change: Callable[[ManualClock], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``monotonic`` is how real time passes for a running clock; a test may pass its own."""
        self._lock = threading.Lock()
        self._monotonic = monotonic
        #: called after every set/advance/freeze/unfreeze, outside the clock's lock (to persist the clock)
        self.on_change = on_change
        self._frozen = frozen
        #: how the clock was made, for `restart` (None: real time when it starts)
        self._start = utc(start) if start is not None else None
        self._start_frozen = frozen
        # Running: now = anchor + (monotonic() - mono_anchor). Frozen: now = anchor.
        self._anchor = _within_range(start) if start is not None else datetime.now(UTC)
        self._mono_anchor = self._monotonic()

    def now(self) -> datetime:
        if self._frozen:
            return self._anchor
        return self._anchor + timedelta(seconds=self._monotonic() - self._mono_anchor)

    @property
    def _anchor(self) -> datetime:
        return self._anchor_at

    @_anchor.setter
    def _anchor(self, moment: datetime) -> None:
        self._anchor_at = moment
        self._anchor_ts = moment.timestamp()

    def timestamp(self) -> float:
        # The building asks for the time several times per request; a float needs no datetime built each time.
        if self._frozen:
            return self._anchor_ts
        return self._anchor_ts + (self._monotonic() - self._mono_anchor)

    @property
    def frozen(self) -> bool:
        return self._frozen

    def _changed(self, result: datetime) -> datetime:
        if self.on_change is not None:
            self.on_change(self)
        return result

    def set(self, moment: datetime, *, frozen: bool | None = None) -> datetime:
        """Show ``moment`` from now on; with ``frozen``, also stand still (True) or run (False) from it, so that a
        clock frozen at a moment shows exactly that moment."""
        moment = _within_range(moment)
        with self._lock:
            self._anchor = moment
            self._mono_anchor = self._monotonic()
            if frozen is not None:
                self._frozen = frozen
            result = self._anchor
        return self._changed(result)

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0) -> datetime:
        delta = timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward")
        with self._lock:
            now = self.now()
            if delta > LATEST - now:
                raise ClockOutOfRange(f"{now.isoformat()} + {delta.total_seconds():g} s")
            self._anchor = now + delta
            self._mono_anchor = self._monotonic()
            result = self._anchor
        return self._changed(result)

    def freeze(self) -> datetime:
        with self._lock:
            self._anchor = self.now()
            self._frozen = True
            result = self._anchor
        return self._changed(result)

    def unfreeze(self) -> datetime:
        with self._lock:
            self._mono_anchor = self._monotonic()
            self._frozen = False
            result = self._anchor
        return self._changed(result)

    def restart(self, moment: datetime | None = None) -> datetime:
        """Back to how the clock was made: at ``moment``, else at its own start (real time now when it was made
        without one), frozen or running as it was made."""
        start = moment if moment is not None else self._start
        with self._lock:
            self._anchor = utc(start) if start is not None else datetime.now(UTC)
            self._mono_anchor = self._monotonic()
            self._frozen = self._start_frozen
            result = self._anchor
        return self._changed(result)

    def to_dict(self) -> dict[str, Any]:
        """The clock's state; a running clock also records real time, so it resumes where real time says."""
        return {
            "now": self.now().isoformat(),
            "frozen": self._frozen,
            "real": datetime.now(UTC).isoformat(),
        }

    @staticmethod
    def check(state: Any) -> None:
        """Raise ValueError unless ``state`` is one `to_dict` could have written (a moment the clock may show)."""
        try:
            _within_range(datetime.fromisoformat(state["now"]))
            if state.get("real") is not None:
                utc(datetime.fromisoformat(state["real"]))
        except (TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"not a saved clock: {exc!r}") from None

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved state: a frozen clock at its moment, a running one as if it had kept running.

        A moment the clock may not show is brought to the nearest one it may (a state saved by an older version,
        which let the clock run into year 10000, still opens)."""
        frozen = bool(state.get("frozen", False))
        saved = datetime.fromisoformat(state["now"])
        try:
            moment = _nearest_in_range(utc(saved))
        except ClockOutOfRange:  # only datetime's first and last day can leave its range on the way to UTC
            moment = EARLIEST if saved.year == 1 else LATEST
        if not frozen and state.get("real"):
            elapsed = datetime.now(UTC) - utc(datetime.fromisoformat(state["real"]))
            moment = LATEST if elapsed > LATEST - moment else _nearest_in_range(moment + elapsed)
        with self._lock:
            self._anchor = moment
            self._mono_anchor = self._monotonic()
            self._frozen = frozen
