"""The simulated intercom through the control API and the `mockserver device` command: every credential kind,
every reason to refuse, the door on the simulated clock, and what going offline does to each vendor API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from mockserver.testing import RunningMock, start_mock

START = datetime(2033, 5, 1, 9, 0, tzinfo=UTC)
VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "device-test"}
SEAM = {"Authorization": "Bearer demo-seam-alice"}
MAGICLINE = {"X-API-KEY": "demo-magicline-mission"}
HOUSE = "3043fde0-3c6d-4913-981f-2607f05fe74e"


@pytest.fixture(scope="module")
def mock() -> Iterator[RunningMock]:
    with start_mock(seed=8, start=START) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(mock: RunningMock) -> None:
    mock.client("control").post("/reset").raise_for_status()
    mock.clock.set(START)


@pytest.fixture
def http(mock: RunningMock) -> Iterator[httpx.Client]:
    """Requests to any of the mock's APIs by absolute URL, straight to the app (no socket)."""
    with mock.client() as client:
        yield client


def _present(mock: RunningMock, intercom: object, kind: str, value: str) -> dict:
    response = mock.client("control").post(f"/intercoms/{intercom}/present", json={"kind": kind, "value": value})
    assert response.status_code == 200, response.text
    return response.json()


def _vms_code(mock: RunningMock, intercom: int = 180, expired_at: str = "2033-05-01 12:00") -> dict:
    response = mock.client("vms").post(
        f"/api/v1/intercom/{intercom}/codes",
        headers=VMS,
        json={"title": "visitor", "expired_at": expired_at},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_every_credential_kind_opens_the_door(mock: RunningMock) -> None:
    magicline = mock.client("magicline", headers=MAGICLINE)
    qr = magicline.get("/v1/customers/1001/access-code").json()["content"]
    for kind, value in [("BARCODE", "bar-1"), ("WALLET_PASS", "wallet-1"), ("PIN", "24680")]:
        assert (
            magicline.post("/v1/customers/1003/access-mediums", json={"type": kind, "value": value}).status_code == 200
        )
    granted = {
        "keypad": _vms_code(mock)["code"],
        "qr": qr,
        "barcode": "bar-1",
        "card": "1290158199",  # entered at the studio's desk (fixtures)
        "pin": "24680",
        "wallet_pass": "wallet-1",
    }
    for kind, value in granted.items():
        decision = _present(mock, 180, kind, value)
        assert decision["granted"] and decision["reason"] == "granted", (kind, decision)
        assert decision["door"]["locked"] is False


def test_every_reason_to_refuse(mock: RunningMock, http: httpx.Client) -> None:
    code = _vms_code(mock, expired_at="2033-05-01 10:00")
    other_intercom = _vms_code(mock, intercom=181)
    deleted = _vms_code(mock)
    http.request("DELETE", mock.urls["vms"] + "/api/v1/intercom/codes", headers=VMS, json={"ids": [deleted["id"]]})
    cases = [
        ("keypad", "99999", "unknown"),
        ("keypad", "12x45", "invalid_format"),
        ("keypad", "123", "invalid_format"),
        ("keypad", other_intercom["code"], "wrong_intercom"),
        ("keypad", deleted["code"], "revoked"),
        ("card", "9900112233", "revoked"),  # a former member's card
        ("card", "5500667788", "studio_not_admitted"),  # the other studio's member
        ("wallet_pass", "nobody", "unknown"),
    ]
    for kind, value, reason in cases:
        decision = _present(mock, 180, kind, value)
        assert not decision["granted"] and decision["reason"] == reason, (kind, value, decision)
        assert decision["door"]["locked"] is True
    mock.clock.set(datetime(2033, 5, 1, 10, 0, 1, tzinfo=UTC))
    assert _present(mock, 180, "keypad", code["code"])["reason"] == "expired"
    http.put(mock.urls["control"] + "/intercoms/180/online", json={"online": False})
    assert _present(mock, 180, "card", "1290158199")["reason"] == "device_offline"


def test_the_door_relocks_on_the_simulated_clock(mock: RunningMock, http: httpx.Client) -> None:
    unlock = http.post(f"{mock.urls['seam']}/intercoms/{HOUSE}/unlock", headers=SEAM, json={"unlock_time": "2000"})
    assert unlock.json() == {"ok": True}
    device = http.get(mock.urls["control"] + "/intercoms/180").json()
    assert device["door"] == {"locked": False, "unlocked_until": "2033-05-01T09:00:02+00:00"}
    mock.clock.advance(seconds=1.5)
    assert http.get(mock.urls["control"] + "/intercoms/180").json()["door"]["locked"] is False
    mock.clock.advance(seconds=1)
    assert http.get(mock.urls["control"] + "/intercoms/180").json()["door"]["locked"] is True
    assert http.post(mock.urls["vms"] + "/api/v1/intercom/180/open-door", headers=VMS).status_code == 204
    events = http.get(mock.urls["control"] + "/intercoms/180/events").json()["events"]
    assert [e["type"] for e in events] == ["door.unlocked", "door.locked", "door.unlocked"]
    assert events[0]["detail"]["by"] == "seam" and events[1]["at"] == "2033-05-01T09:00:02+00:00"


def test_going_offline_has_the_documented_effects_everywhere(mock: RunningMock, http: httpx.Client) -> None:
    code = _vms_code(mock)
    seam_code = next(
        c
        for c in http.get(mock.urls["seam"] + "/access_codes", params={"intercom_id": HOUSE}, headers=SEAM).json()[
            "access_codes"
        ]
        if c["code"] == code["code"]
    )
    offline = http.put(mock.urls["control"] + "/intercoms/180/online", json={"online": False}).json()
    assert offline["online"] is False

    unlock = http.post(f"{mock.urls['seam']}/intercoms/{HOUSE}/unlock", headers=SEAM, json={"unlock_time": 1000})
    assert unlock.status_code == 500 and unlock.json()["error_id"] == "INTERCOM_DISCONNECTED"
    removal = http.delete(f"{mock.urls['seam']}/access_codes/{seam_code['access_code_id']}", headers=SEAM)
    assert removal.status_code == 500 and removal.json()["error_id"] == "ACCESS_CODE_REMOVAL_FAILED"
    assert (
        http.get(f"{mock.urls['seam']}/access_codes/{seam_code['access_code_id']}", headers=SEAM).status_code == 200
    )  # the code stays

    listed = http.get(mock.urls["vms"] + "/api/v1/intercom/codes", headers=VMS).json()["data"]
    assert all(c["intercom"]["is_online"] is False for c in listed if c["intercom"]["id"] == 180)
    door = http.post(mock.urls["vms"] + "/api/v1/intercom/180/open-door", headers=VMS)
    assert door.status_code == 422 and set(door.json()["errors"]) == {"intercom"}

    # Changes wait for the device: a new code reaches the keypad, a deleted one keeps opening, until back online.
    queued = _vms_code(mock)
    http.request("DELETE", mock.urls["vms"] + "/api/v1/intercom/codes", headers=VMS, json={"ids": [code["id"]]})
    assert _present(mock, 180, "keypad", queued["code"])["reason"] == "unknown"
    assert _present(mock, 180, "keypad", code["code"])["granted"] is True
    assert http.get(mock.urls["control"] + "/intercoms/180").json()["pending_sync"] == 2
    back = http.put(mock.urls["control"] + "/intercoms/180/online", json={"online": True}).json()
    assert back["online"] is True and back["pending_sync"] == 0
    assert _present(mock, 180, "keypad", queued["code"])["granted"] is True
    assert _present(mock, 180, "keypad", code["code"])["reason"] == "revoked"
    events = http.get(mock.urls["control"] + "/intercoms/180/events").json()["events"]
    assert {"type": "device.online", "detail": {"synced": 2}} in [{k: e[k] for k in ("type", "detail")} for e in events]


def test_the_device_refuses_a_duplicate_or_malformed_code(mock: RunningMock) -> None:
    control = mock.client("control")
    programmed = control.post("/intercoms/181/codes", json={"name": "cleaner", "code": "4321"})
    assert programmed.status_code == 201 and programmed.json()["code"] == "4321"
    assert control.post("/intercoms/181/codes", json={"name": "again", "code": "4321"}).status_code == 400
    assert control.post("/intercoms/181/codes", json={"name": "short", "code": "12"}).status_code == 400
    assert _present(mock, 181, "keypad", "4321")["granted"] is True


def test_the_device_command(mock: RunningMock) -> None:
    code = _vms_code(mock)
    base = ["--url", mock.base_url]
    granted = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "device", *base, "keypad", "180", code["code"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert granted.returncode == 0 and granted.stdout.startswith("GRANTED")
    refused = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "device", *base, "keypad", "180", "00000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and refused.stdout.startswith("DENIED (unknown")
    log = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "device", *base, "events", "180"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "access.granted" in log.stdout and "access.denied" in log.stdout
