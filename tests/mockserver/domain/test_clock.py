"""The clock's float reading is the same instant as its datetime, however the clock was moved."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from mockserver.domain.clock import ManualClock, SystemClock

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
