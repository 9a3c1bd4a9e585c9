"""The clock's float reading is the same instant as its datetime, however the clock was moved."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from mockserver.domain.clock import EARLIEST, LATEST, ClockOutOfRange, ManualClock, SystemClock

START = datetime(2030, 6, 1, 9, 0, 0, 250_000, tzinfo=UTC)


def test_a_frozen_clock_reads_the_same_instant_both_ways_after_every_move() -> None:
    clock = ManualClock(START, frozen=True)
    assert clock.timestamp() == START.timestamp() == clock.now().timestamp()
    clock.advance(hours=25)
    assert clock.timestamp() == clock.now().timestamp() == (START + timedelta(hours=25)).timestamp()
    clock.set(datetime(2031, 1, 1, tzinfo=UTC))
    assert clock.timestamp() == clock.now().timestamp() == datetime(2031, 1, 1, tzinfo=UTC).timestamp()
    other = ManualClock(START, frozen=True)
    other.restore(clock.to_dict())
    assert other.timestamp() == clock.timestamp()


def test_a_running_clock_runs_with_real_time_from_its_start() -> None:
    clock = ManualClock(START)
    first = clock.timestamp()
    assert abs(first - clock.now().timestamp()) < 0.05
    time.sleep(0.02)
    assert clock.timestamp() - first >= 0.02
    clock.freeze()
    frozen = clock.timestamp()
    assert clock.timestamp() == frozen == clock.now().timestamp()


def test_the_system_clock_reads_real_time() -> None:
    assert abs(SystemClock().timestamp() - time.time()) < 1


class Ticker:
    """Real time as the test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_clock_refuses_moves_outside_its_range() -> None:
    clock = ManualClock(START, frozen=True)
    for moment in (
        datetime(9999, 12, 31, 23, 59, 58, tzinfo=UTC),
        LATEST + timedelta(microseconds=1),
        EARLIEST - timedelta(microseconds=1),
        datetime.fromisoformat("0001-01-01T00:00:00+00:01"),  # year 0 in UTC
        datetime.fromisoformat("9999-12-31T23:59:59-00:01"),  # year 10000 in UTC
    ):
        with pytest.raises(ClockOutOfRange):
            clock.set(moment)
        assert clock.now() == START  # a refused move moves nothing
    assert clock.set(LATEST) == LATEST
    assert clock.set(EARLIEST) == EARLIEST
    with pytest.raises(ClockOutOfRange):
        ManualClock(datetime(9999, 1, 1, tzinfo=UTC))


def test_advancing_stops_at_the_end_of_the_range() -> None:
    clock = ManualClock(START, frozen=True)
    century = 3_153_600_000  # the control API's largest advance
    moves = 0
    with pytest.raises(ClockOutOfRange):
        while True:
            clock.advance(century)
            moves += 1
    assert moves == (LATEST - START) // timedelta(seconds=century)
    before = clock.now()
    with pytest.raises(ClockOutOfRange):
        clock.advance(century)
    assert clock.now() == before <= LATEST


def test_a_clock_frozen_at_a_moment_shows_exactly_that_moment() -> None:
    ticker = Ticker()
    clock = ManualClock(START, monotonic=ticker)
    ticker.now += 0.5
    moment = datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert clock.set(moment, frozen=True) == moment
    ticker.now += 10
    assert clock.now() == moment and clock.frozen
    clock.set(START, frozen=False)
    ticker.now += 2
    assert clock.now() == START + timedelta(seconds=2)


def test_every_saved_clock_opens_again() -> None:
    """A clock saved at the end of its range and left running for years still restores; so does one saved by an
    older version, whose clock could run into year 10000 (it is brought back into range)."""
    clock = ManualClock(START, frozen=True, monotonic=Ticker())  # no real time passes after the restore
    ten_years = timedelta(days=3650)
    saved_real = (datetime.now(UTC) - ten_years).isoformat()
    for now, expected in (
        (LATEST.isoformat(), LATEST),
        ("9999-12-31T23:59:58+00:00", LATEST),
        ("9999-12-31T23:59:59.999999-23:59", LATEST),
        ("0001-01-01T00:00:00+00:01", EARLIEST),
        ("1900-01-01T00:00:00+00:00", EARLIEST),
    ):
        clock.restore({"now": now, "frozen": False, "real": saved_real})
        if expected == LATEST:
            assert clock.now() == LATEST
        else:  # from the start of the range, it ran on for the ten years since it was saved
            assert timedelta(0) <= clock.now() - (EARLIEST + ten_years) < timedelta(seconds=5)
    clock.restore({"now": "8999-12-31T00:00:00+00:00", "frozen": True, "real": saved_real})
    assert clock.now() == datetime(8999, 12, 31, tzinfo=UTC)


def test_a_saved_clock_is_checked_before_it_is_used() -> None:
    ManualClock.check(ManualClock(START).to_dict())
    for state in (
        {"now": "9999-12-31T23:59:58+00:00"},
        {"now": "not a time"},
        {"now": 5},
        {},
        5,
        {"now": START.isoformat(), "real": "never"},
    ):
        with pytest.raises(ValueError):
            ManualClock.check(state)


def test_restart_goes_back_to_how_the_clock_was_made() -> None:
    frozen = ManualClock(START, frozen=True)
    frozen.advance(days=1)
    frozen.unfreeze()
    assert frozen.restart() == START and frozen.now() == START and frozen.frozen
    running = ManualClock(START)
    running.freeze()
    running.advance(days=1)
    running.restart()
    assert not running.frozen and abs(running.timestamp() - START.timestamp()) < 1
    # Made without a start, it goes back to real time.
    real = ManualClock(frozen=True)
    real.advance(days=3)
    real.restart()
    assert abs(real.timestamp() - time.time()) < 1 and real.frozen
    assert real.restart(START) == START
