"""The simulated clock stays within the times the mock can write and read back (1970 to 9000).

Moves outside that window are refused with the control API's 400 and change nothing; dates a client gives that
would be written with a five-digit year are refused with the vendor's error; a state file always opens again.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mockserver.app import create_app
from mockserver.domain.clock import LATEST, ManualClock
from mockserver.testing import RunningMock, start_mock
from tests.mockserver.contract_audit import assert_conforms

START = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "clock-range"}


class Ticker:
    """Real time as the test moves it."""

    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture(scope="module")
def mock(ticker: Ticker) -> Iterator[RunningMock]:
    with start_mock(seed=4, clock=ManualClock(START, monotonic=ticker)) as running:
        yield running


@pytest.fixture
def control(mock: RunningMock) -> Iterator[httpx.Client]:
    with mock.client("control") as client:
        client.post("/reset").raise_for_status()
        client.put("/clock", json={"now": START.isoformat(), "frozen": False}).raise_for_status()
        yield client


def _state(control: httpx.Client) -> object:
    return control.get("/snapshot").json()["state"]


@pytest.mark.parametrize(
    "moment",
    [
        "9999-12-31T23:59:58Z",
        "9000-01-01T00:00:00.000001Z",
        "0001-01-01T00:00:00+00:01",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-23:59",
        "1969-12-31T23:59:59Z",
    ],
)
def test_setting_the_clock_outside_its_range_is_refused(control: httpx.Client, moment: str) -> None:
    before = control.get("/clock").json()
    refused = assert_conforms(control.put("/clock", json={"now": moment, "frozen": True}))
    assert refused.status_code == 400
    assert "1970-01-01T00:00:00+00:00 to 9000-01-01T00:00:00+00:00" in refused.json()["detail"]
    assert control.get("/clock").json() == before


def test_the_ends_of_the_range_are_allowed_and_the_clock_runs_on(
    mock: RunningMock, control: httpx.Client, ticker: Ticker
) -> None:
    assert control.put("/clock", json={"now": "9000-01-01T00:00:00Z"}).json()["now"] == LATEST.isoformat()
    ticker.now += 3  # three seconds of real time: the clock runs past the end of the range, and all is well
    http = mock.client()
    codes = http.get(mock.urls["vms"] + "/api/v1/intercom/codes", headers=VMS)
    assert codes.status_code == 200
    assert codes.headers["date"] == "Wed, 01 Jan 9000 00:00:03 GMT"
    qr = http.get(
        mock.urls["magicline"] + "/v1/customers/1001/access-code", headers={"X-API-KEY": "demo-magicline-mission"}
    )
    assert qr.json()["expiresAt"] == "9000-01-01T00:05:03Z"
    assert control.put("/clock", json={"now": "1970-01-01T00:00:00Z"}).status_code == 200


def test_advancing_past_the_end_is_refused(control: httpx.Client) -> None:
    century = 3_153_600_000  # the largest advance the control API takes
    answers = [control.post("/clock/advance", json={"seconds": century}) for _ in range(80)]
    assert {a.status_code for a in answers} == {200, 400}
    accepted = [a for a in answers if a.status_code == 200]
    assert len(accepted) == (LATEST - START) // timedelta(seconds=century)
    assert all(a.status_code == 400 for a in answers[len(accepted) :])
    assert control.get("/clock").json()["now"] == accepted[-1].json()["now"]


def test_freezing_at_a_moment_freezes_at_exactly_that_moment(control: httpx.Client, ticker: Ticker) -> None:
    ticker.now += 0.25  # the running clock has moved on since it was set
    frozen = control.put("/clock", json={"now": "2031-07-08T09:10:11Z", "frozen": True}).json()
    assert frozen == {"now": "2031-07-08T09:10:11+00:00", "frozen": True}
    ticker.now += 5
    assert control.get("/clock").json() == frozen


def test_a_code_whose_deletion_date_needs_five_digits_is_refused(mock: RunningMock, control: httpx.Client) -> None:
    def create(expired_at: str) -> httpx.Response:
        return mock.client("vms").post(
            "/api/v1/intercom/180/codes",
            headers=VMS,
            json={"title": "Far", "expired_at": expired_at},
        )

    before = _state(control)
    refused = assert_conforms(create("9999-12-31 23:59"))
    assert refused.status_code == 422
    assert refused.json()["errors"] == {"expired_at": ["The expired at field must be a date before 9999-12-31 00:00."]}
    assert _state(control) == before
    latest = create("9999-12-30 23:59").json()
    assert latest["will_deleted_at"] == "9999-12-31 23:59:00"

    programmed = control.post("/intercoms/180/codes", json={"name": "Far", "expires_at": "9999-12-31T00:00:00Z"})
    assert programmed.status_code == 400
    assert programmed.json()["detail"] == "The expired at must be a date before 9999-12-31 00:00."


def test_a_snapshot_with_a_clock_out_of_range_changes_nothing(control: httpx.Client) -> None:
    snapshot = control.get("/snapshot").json()
    control.post("/intercoms/180/codes", json={"name": "After the snapshot"}).raise_for_status()
    before, clock = _state(control), control.get("/clock").json()
    for broken in ({"now": "9999-12-31T23:59:58+00:00", "frozen": True}, {"now": 5}, {"frozen": True}, "soon"):
        refused = assert_conforms(control.put("/snapshot", json={**snapshot, "clock": broken}))
        assert refused.status_code == 400, refused.text
    assert _state(control) == before
    assert control.get("/clock").json()["now"] == clock["now"]


def test_a_state_file_from_the_end_of_time_opens_again(tmp_path: pathlib.Path) -> None:
    """A state whose clock ran into year 10000 under an older version (which allowed it) opens at the end of the
    range; before, restoring it raised OverflowError and the mock could not start."""
    path = tmp_path / "state.db"
    first = create_app(state_path=path, seed=1, clock=ManualClock(START))
    saved_real = (datetime.now(UTC) - timedelta(seconds=3)).isoformat()
    first.runtime.building.save_meta("clock", {"now": "9999-12-31T23:59:58+00:00", "frozen": False, "real": saved_real})
    first.runtime.building.store.close()

    again = create_app(state_path=path, seed=1, clock=ManualClock(START, frozen=True, monotonic=Ticker()))
    try:
        assert again.runtime.clock.now() == LATEST
    finally:
        again.runtime.building.store.close()
