"""The control API: state, clock, credentials, faults and the journal, as a test suite or a person uses them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from mockserver.testing import RunningMock, start_mock

START = datetime(2032, 3, 1, 12, 0, tzinfo=UTC)
VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "control-test"}
HOUSE = "3043fde0-3c6d-4913-981f-2607f05fe74e"


@pytest.fixture(scope="module")
def mock() -> Iterator[RunningMock]:
    with start_mock(seed=11, start=START) as running:
        yield running


@pytest.fixture
def control(mock: RunningMock) -> Iterator[httpx.Client]:
    with mock.client("control") as client:
        client.post("/reset").raise_for_status()
        mock.clock.set(START)
        yield client


@pytest.fixture
def http(mock: RunningMock) -> Iterator[httpx.Client]:
    """Requests to any of the mock's APIs by absolute URL, straight to the app (no socket)."""
    with mock.client() as client:
        yield client


def _codes(mock: RunningMock) -> list[dict]:
    with mock.client("vms") as vms:
        response = vms.get("/api/v1/intercom/codes", headers=VMS)
    assert response.status_code == 200
    return response.json()["data"]


def _create(mock: RunningMock, title: str) -> httpx.Response:
    with mock.client("vms") as vms:
        return vms.post(
            "/api/v1/intercom/180/codes",
            headers=VMS,
            json={"title": title, "expired_at": "2032-04-01 00:00"},
        )


def test_snapshot_restore_and_reset(mock: RunningMock, control: httpx.Client) -> None:
    assert _create(mock, "before").status_code == 200
    snapshot = control.get("/snapshot").json()
    assert snapshot["format"] == "doorcodes-snapshot/1"
    assert _create(mock, "after").status_code == 200
    mock.clock.advance(hours=1)

    assert control.put("/snapshot", json=snapshot).status_code == 204
    titles = [c["title"] for c in _codes(mock)]
    assert "before" in titles and "after" not in titles
    assert control.get("/clock").json()["now"] == START.isoformat()

    assert control.post("/reset").status_code == 204
    assert [c["title"] for c in _codes(mock)] == ["Gardener", "Visitor 1"]
    refused = control.put("/snapshot", json={"format": "something-else"})
    assert refused.status_code == 400 and refused.headers["content-type"] == "application/problem+json"


def test_reset_puts_the_clock_back_where_the_mock_started_it(mock: RunningMock, control: httpx.Client) -> None:
    control.post("/clock/advance", json={"seconds": 86400}).raise_for_status()
    control.put("/clock", json={"frozen": False}).raise_for_status()
    assert control.post("/reset").status_code == 204
    assert control.get("/clock").json() == {"now": START.isoformat(), "frozen": True}


def test_the_clock_reads_sets_advances_and_freezes(mock: RunningMock, control: httpx.Client) -> None:
    assert control.get("/clock").json() == {"now": START.isoformat(), "frozen": True}
    moved = control.post("/clock/advance", json={"seconds": 90}).json()
    assert moved["now"] == "2032-03-01T12:01:30+00:00"
    assert control.put("/clock", json={"now": "2032-03-02T00:00:00Z"}).json()["now"] == "2032-03-02T00:00:00+00:00"
    assert control.put("/clock", json={"frozen": False}).json()["frozen"] is False
    assert control.put("/clock", json={"frozen": True}).json()["frozen"] is True
    with mock.client("seam") as seam:
        response = seam.get("/health")
    assert response.headers["date"] == "Tue, 02 Mar 2032 00:00:00 GMT"
    assert control.post("/clock/advance", json={"seconds": -5}).status_code == 400


def test_minted_credentials_work_and_keep_their_scopes(
    mock: RunningMock, control: httpx.Client, http: httpx.Client
) -> None:
    key = control.post("/credentials/magicline-keys", json={"studio_id": 1238735971, "scopes": ["CUSTOMER_READ"]})
    assert key.status_code == 201
    headers = {"X-API-KEY": key.json()["api_key"]}
    assert http.get(mock.urls["magicline"] + "/v1/customers/2001", headers=headers).status_code == 200
    write = http.post(
        mock.urls["magicline"] + "/v1/customers/2001/access-mediums",
        headers=headers,
        json={"type": "PIN", "value": "1234"},
    )
    assert write.status_code == 403

    owner = mock.credentials["seam"]["owners"][1]["owner_id"]
    seam = control.post("/credentials/seam-tokens", json={"owner_id": owner}).json()
    intercoms = http.get(
        mock.urls["seam"] + "/door_locks", headers={"Authorization": f"Bearer {seam['access_token']}"}
    ).json()["intercoms"]
    assert [i["name"] for i in intercoms] == ["Harbour Entrance"]

    vms = control.post("/credentials/vms-tokens", json={"user_id": 14}).json()
    assert vms["access_token"].startswith("Bearer ")
    assert (
        http.get(
            mock.urls["vms"] + "/api/v1/intercom/codes", headers={**VMS, "Authorization": vms["access_token"]}
        ).status_code
        == 200
    )
    assert control.post("/credentials/vms-tokens", json={"user_id": 999}).status_code == 404


def test_every_credential_comes_with_the_headers_to_send(mock_server: RunningMock) -> None:
    """Each vendor's own `access_token` form is kept (Seam's bare, VMS's with its scheme); `headers` are what a
    request sends, as they are. Responses here are checked against control.yaml (`mock_server` validates)."""
    control = mock_server.client("control")
    http = mock_server.client()
    credentials = control.get("/credentials").json()
    magicline, seam, vms = mock_server.urls["magicline"], mock_server.urls["seam"], mock_server.urls["vms"]
    minted = [
        ("magicline", control.post("/credentials/magicline-keys", json={"studio_id": 1238735971}).json()),
        (
            "seam",
            control.post(
                "/credentials/seam-tokens", json={"owner_id": credentials["seam"]["owners"][1]["owner_id"]}
            ).json(),
        ),
        ("vms", control.post("/credentials/vms-tokens", json={"user_id": 14}).json()),
    ]
    listed = (
        [("magicline", key) for key in credentials["magicline"]]
        + [("seam", owner) for owner in credentials["seam"]["owners"]]
        + [("vms", user) for user in credentials["vms"]]
    )
    probes = {
        "magicline": magicline + "/v1/customers",
        "seam": seam + "/door_locks",
        "vms": vms + "/api/v1/intercom/codes",
    }
    for api, credential in listed + minted:
        answer = http.get(probes[api], headers=credential["headers"])
        assert answer.status_code == 200, (api, credential, answer.text)
    alice_seam = credentials["seam"]["owners"][0]
    assert alice_seam["access_token"] == "demo-seam-alice"
    assert alice_seam["headers"] == {"Authorization": "Bearer demo-seam-alice"}
    alice_vms = credentials["vms"][0]
    assert alice_vms["access_token"] == "Bearer demo-vms-alice"
    assert alice_vms["headers"]["Authorization"] == "Bearer demo-vms-alice"
    mission = next(key for key in credentials["magicline"] if key["api_key"] == "demo-magicline-mission")
    assert mission["headers"] == {"X-API-KEY": "demo-magicline-mission"}


def test_faults_answer_declared_statuses_for_the_next_calls(
    mock: RunningMock, control: httpx.Client, http: httpx.Client
) -> None:
    fault = control.post("/faults", json={"api": "seam", "operation_id": "listIntercoms", "status": 401, "count": 2})
    assert fault.status_code == 201
    seam = {"Authorization": "Bearer demo-seam-alice"}
    for _ in range(2):
        failed = http.get(mock.urls["seam"] + "/door_locks", headers=seam)
        assert failed.status_code == 401 and failed.json()["error_id"] == "UNAUTHORIZED"
    assert http.get(mock.urls["seam"] + "/door_locks", headers=seam).status_code == 200
    assert control.get("/faults").json() == {"faults": []}

    # A fault may only produce what the contract declares for the operation.
    refused = control.post("/faults", json={"api": "seam", "operation_id": "listIntercoms", "status": 409})
    assert refused.status_code == 400
    # A fault for one tenant leaves the other alone; a fault can be removed.
    bob = mock.credentials["seam"]["owners"][1]["owner_id"]
    only_bob = control.post(
        "/faults", json={"api": "seam", "status": 404, "tenant": bob, "operation_id": "getIntercom"}
    ).json()
    alice_house = http.get(mock.urls["seam"] + "/intercoms/3043fde0-3c6d-4913-981f-2607f05fe74e", headers=seam)
    assert alice_house.status_code == 200
    assert control.delete(f"/faults/{only_bob['id']}").status_code == 204
    assert control.delete(f"/faults/{only_bob['id']}").status_code == 404


def test_the_journal_records_redacts_and_filters(mock: RunningMock, control: httpx.Client, http: httpx.Client) -> None:
    control.delete("/journal")
    assert _create(mock, "journaled").status_code == 200
    http.post(
        mock.urls["vms"] + "/api/v1/token",
        headers={"X-Client": "web", "X-UUID": "j"},
        json={"login": "alice@demo.test", "password": "alice-password"},
    )
    http.get(mock.urls["magicline"] + "/v1/customers/1001", headers={"X-API-KEY": "demo-magicline-mission"})

    entries = control.get("/journal", params={"api": "vms"}).json()["entries"]
    created, login = entries
    assert created["operation_id"] == "createCode" and created["status"] == 200
    assert created["request_headers"]["authorization"] == "***"
    assert '"journaled"' in created["request_body"]
    assert login["operation_id"] == "login"
    assert "alice-password" not in str(login) and '"***"' in login["request_body"]
    assert json.loads(login["response_body"])["access_token"] == "***" and "Bearer " not in login["response_body"]

    magicline = control.get("/journal", params={"operation_id": "getCustomerById"}).json()["entries"]
    assert len(magicline) == 1 and magicline[0]["request_headers"]["x-api-key"] == "***"
    assert control.get("/journal", params={"status": 404}).json()["entries"] == []
    assert len(control.get("/journal", params={"limit": 1}).json()["entries"]) == 1


def test_the_journal_is_a_bounded_ring(mock: RunningMock, control: httpx.Client, http: httpx.Client) -> None:
    assert control.patch("/settings", json={"journal_size": 3}).json()["journal_size"] == 3
    try:
        for _ in range(5):
            http.get(mock.urls["seam"] + "/health")
        entries = control.get("/journal", params={"limit": 100}).json()["entries"]
        assert len(entries) == 3
    finally:
        control.patch("/settings", json={"journal_size": 1000})


def test_the_building_and_its_devices_are_listed(mock: RunningMock, control: httpx.Client) -> None:
    building = control.get("/building").json()
    assert [o["login"] for o in building["owners"]] == ["alice@demo.test", "bob@demo.test"]
    assert {s["studio_id"]: s["customers"] for s in building["studios"]} == {1238735970: 4, 1238735971: 1}
    house = control.get("/intercoms/180").json()
    assert house == control.get("/intercoms/3043fde0-3c6d-4913-981f-2607f05fe74e").json()
    assert house["door"] == {"locked": True, "unlocked_until": None} and house["online"] is True
    assert control.get("/intercoms/999").status_code == 404


def test_the_pytest_fixture_gives_a_fresh_mock(mock_server: RunningMock) -> None:
    """`mock_server` comes from the package's pytest plugin (entry point pytest11), as a user's tests get it."""
    assert mock_server.clock.frozen
    assert set(mock_server.urls) == {"magicline", "seam", "vms", "control"}
    token = mock_server.credentials["seam"]["owners"][0]["access_token"]
    with mock_server.client() as http:
        assert (
            http.get(mock_server.urls["seam"] + "/door_locks", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )


@pytest.mark.parametrize(("pipeline", "read_cache"), [("compiled", True), ("compiled", False), ("connexion", False)])
def test_a_revoked_seam_token_gets_seams_401(pipeline: str, read_cache: bool) -> None:
    """Seam tokens never expire in the mock; a client tests its re-authorisation by revoking one."""
    with start_mock(seed=12, start=START, pipeline=pipeline, read_cache=read_cache) as running:
        control = running.client("control")
        owner = running.credentials["seam"]["owners"][0]["owner_id"]
        minted = control.post("/credentials/seam-tokens", json={"owner_id": owner}).json()["access_token"]
        seam = running.client("seam", headers={"Authorization": f"Bearer {minted}"})
        assert seam.get("/door_locks").status_code == 200  # the read cache keeps this answer, and the verdict

        running.clock.advance(days=3650)
        assert seam.get("/door_locks").status_code == 200  # ten simulated years later, still good
        assert control.post("/credentials/seam-tokens/revoke", json={"access_token": minted}).status_code == 204
        refused = seam.get("/door_locks")
        assert refused.status_code == 401
        assert refused.json() == {"error_id": "UNAUTHORIZED", "error_message": "Missing or invalid access token"}
        assert seam.post(f"/intercoms/{HOUSE}/unlock", json={"unlock_time": "5000"}).status_code == 401

        # Revoked once: a second time, or a token that never was, or a VMS token, is the control API's 404.
        for token in (minted, "never-issued", "demo-vms-alice"):
            missing = control.post("/credentials/seam-tokens/revoke", json={"access_token": token})
            assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        assert running.client().get(running.urls["vms"] + "/api/v1/intercom/codes", headers=VMS).status_code == 200

        # The demo token may be revoked too; it is then no longer offered, until a reset.
        demo = {"Authorization": "Bearer demo-seam-alice"}
        assert (
            control.post("/credentials/seam-tokens/revoke", json={"access_token": "demo-seam-alice"}).status_code == 204
        )
        assert seam.get("/door_locks", headers=demo).status_code == 401
        assert control.get("/credentials").json()["seam"]["owners"][0]["access_token"] == ""
        control.post("/reset").raise_for_status()
        assert seam.get("/door_locks", headers=demo).status_code == 200
        assert control.get("/credentials").json()["seam"]["owners"][0]["access_token"] == "demo-seam-alice"
        # Bob's own token never stopped working.
        assert seam.get("/door_locks", headers={"Authorization": "Bearer demo-seam-bob"}).status_code == 200
