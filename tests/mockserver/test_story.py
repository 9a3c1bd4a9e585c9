"""The cross-API story, end to end over HTTP: one building, three views that agree."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest

from mockserver.testing import RunningMock, start_mock

START = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
VMS_HEADERS = {"X-Client": "web", "X-UUID": "story-device"}


@pytest.fixture(scope="module")
def mock() -> Iterator[RunningMock]:
    with start_mock(seed=3, start=START, validate_responses=True) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(mock: RunningMock) -> None:
    mock.client("control").post("/reset").raise_for_status()
    mock.clock.set(START)


def _vms_login(mock: RunningMock, login: str, password: str) -> httpx.Client:
    client = mock.client("vms", headers=VMS_HEADERS)
    response = client.post("/api/v1/token", json={"login": login, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"].startswith("Bearer ")
    assert body["user"]["login"] == login
    client.headers["Authorization"] = body["access_token"]
    return client


def _seam(mock: RunningMock, owner: int = 0) -> httpx.Client:
    token = mock.credentials["seam"]["owners"][owner]["access_token"]
    return mock.client("seam", headers={"Authorization": f"Bearer {token}"})


def _vms_codes(vms: httpx.Client) -> list[dict]:
    response = vms.get("/api/v1/intercom/codes", params={"per_page": 100})
    assert response.status_code == 200
    return response.json()["data"]


def _seam_codes(seam: httpx.Client, intercom_uuid: str) -> list[dict]:
    response = seam.get("/access_codes", params={"intercom_id": intercom_uuid})
    assert response.status_code == 200
    return response.json()["access_codes"]


def test_a_vms_code_lives_in_seam_and_expires_in_every_view(mock: RunningMock) -> None:
    vms = _vms_login(mock, "alice@demo.test", "alice-password")
    seam = _seam(mock)
    house = next(i for i in seam.get("/door_locks").json()["intercoms"] if i["name"] == "House")

    created = vms.post("/api/v1/intercom/180/codes", json={"title": "Plumber", "expired_at": "2030-01-01 10:00"})
    assert created.status_code == 200, created.text
    code = created.json()
    assert code["code"].isdigit() and len(code["code"]) == 5
    assert code["expired_at"] == "2030-01-01 10:00:00" and code["will_deleted_at"] == "2030-01-02 10:00:00"
    assert code["is_expired"] is False and code["intercom"]["id"] == 180

    listed = [c for c in _seam_codes(seam, house["intercom_id"]) if c["name"] == "Plumber"]
    assert len(listed) == 1
    alice = mock.credentials["seam"]["owners"][0]["owner_id"]
    assert listed[0]["code"] == code["code"] and listed[0]["owner_id"] == alice
    assert seam.get(f"/access_codes/{listed[0]['access_code_id']}").json() == listed[0]

    # Past expired_at: still listed by both, VMS marks it expired, and the Date header tells the server's time.
    mock.clock.advance(hours=3)
    response = vms.get("/api/v1/intercom/codes")
    assert parsedate_to_datetime(response.headers["date"]) == START + timedelta(hours=3)
    plumber = next(c for c in response.json()["data"] if c["id"] == code["id"])
    assert plumber["is_expired"] is True
    assert any(c["name"] == "Plumber" for c in _seam_codes(seam, house["intercom_id"]))

    # Past will_deleted_at: gone from every view.
    mock.clock.advance(hours=24)
    assert all(c["id"] != code["id"] for c in _vms_codes(vms))
    assert all(c["name"] != "Plumber" for c in _seam_codes(seam, house["intercom_id"]))
    assert seam.get(f"/access_codes/{listed[0]['access_code_id']}").status_code == 404


def test_a_seam_delete_removes_the_code_from_vms(mock: RunningMock) -> None:
    vms = _vms_login(mock, "alice@demo.test", "alice-password")
    seam = _seam(mock)
    code = vms.post("/api/v1/intercom/181/codes", json={"title": "Courier", "expired_at": "2030-02-01 00:00"}).json()
    back_door = code_uuid = None
    for intercom in seam.get("/door_locks").json()["intercoms"]:
        for listed in _seam_codes(seam, intercom["intercom_id"]):
            if listed["code"] == code["code"] and listed["name"] == "Courier":
                back_door, code_uuid = intercom["intercom_id"], listed["access_code_id"]
    assert code_uuid is not None

    assert seam.delete(f"/access_codes/{code_uuid}").json() == {"ok": True}
    assert all(c["id"] != code["id"] for c in _vms_codes(vms))
    assert all(c["access_code_id"] != code_uuid for c in _seam_codes(seam, back_door))


def test_tenants_do_not_see_each_other(mock: RunningMock) -> None:
    alice = _vms_login(mock, "alice@demo.test", "alice-password")
    bob = _vms_login(mock, "bob@demo.test", "bob-password")
    created = alice.post("/api/v1/intercom/180/codes", json={"title": "Mine", "expired_at": "2030-03-01 00:00"})
    assert created.status_code == 200
    assert all(c["title"] != "Mine" for c in _vms_codes(bob))
    # Bob creating on Alice's intercom, or opening her door, looks like a missing intercom.
    assert (
        bob.post("/api/v1/intercom/180/codes", json={"title": "x", "expired_at": "2030-03-01 00:00"}).status_code == 404
    )
    assert bob.post("/api/v1/intercom/180/open-door").status_code == 404
    assert bob.request("DELETE", "/api/v1/intercom/codes", json={"ids": [created.json()["id"]]}).status_code == 422
    assert any(c["title"] == "Mine" for c in _vms_codes(alice))

    seam_bob = _seam(mock, owner=1)
    alice_house = "3043fde0-3c6d-4913-981f-2607f05fe74e"
    assert seam_bob.get(f"/intercoms/{alice_house}").json()["error_id"] == "INTERCOM_NOT_FOUND"
    assert seam_bob.get("/access_codes", params={"intercom_id": alice_house}).status_code == 404

    mission = {"X-API-KEY": "demo-magicline-mission"}
    harbour = {"X-API-KEY": "demo-magicline-harbour"}
    magicline = mock.client("magicline")
    assert magicline.get("/v1/customers/2001", headers=mission).status_code == 404
    ids = [c["id"] for c in magicline.get("/v1/customers", headers=harbour).json()["result"]]
    assert ids == [2001]


def test_magicline_access_code_and_mediums_round_trip(mock: RunningMock) -> None:
    magicline = mock.client("magicline", headers={"X-API-KEY": "demo-magicline-mission"})
    first = magicline.get("/v1/customers/1001/access-code").json()
    assert first["format"] == "QR_CODE" and first["content"].isdigit()
    assert magicline.get("/v1/customers/1001/access-code").json() == first
    expires = datetime.fromisoformat(first["expiresAt"].replace("Z", "+00:00"))
    mock.clock.set(expires + timedelta(seconds=1))
    fresh = magicline.get("/v1/customers/1001/access-code").json()
    assert fresh["content"] != first["content"] and fresh["expiresAt"] > first["expiresAt"]

    added = magicline.post("/v1/customers/1001/access-mediums", json={"type": "WALLET_PASS", "value": "pass-42"})
    assert added.status_code == 200
    medium = added.json()
    assert medium["type"] == "WALLET_PASS" and medium["value"] == "pass-42"
    customer = magicline.get("/v1/customers/1001").json()
    assert medium in customer["accessMediums"]

    changed = magicline.put(f"/v1/customers/1001/access-mediums/{medium['id']}", json={"value": "pass-43"})
    assert changed.json() == {**medium, "value": "pass-43"}
    assert {**medium, "value": "pass-43"} in magicline.get("/v1/customers/1001").json()["accessMediums"]

    deleted = magicline.delete(f"/v1/customers/1001/access-mediums/{medium['id']}")
    assert deleted.status_code == 200 and deleted.content == b""
    assert all(m["id"] != medium["id"] for m in magicline.get("/v1/customers/1001").json()["accessMediums"])

    # The card the studio entered at its desk is not the API's to change.
    card = next(m for m in customer["accessMediums"] if m["type"] == "CARD_NUMBER")
    refused = magicline.delete(f"/v1/customers/1001/access-mediums/{card['id']}")
    assert refused.status_code == 403 and refused.json()["reference"] == "accessMediumId"


def test_a_magicline_value_is_one_medium_of_the_studio_whatever_its_type(mock: RunningMock) -> None:
    mission = mock.client("magicline", headers={"X-API-KEY": "demo-magicline-mission"})
    card = mission.post("/v1/customers/1001/access-mediums", json={"type": "CARD_NUMBER", "value": "5550001"})
    assert card.status_code == 200
    for customer, kind in ((1002, "PIN"), (1001, "BARCODE"), (1002, "CARD_NUMBER"), (1003, "WALLET_PASS")):
        taken = mission.post(f"/v1/customers/{customer}/access-mediums", json={"type": kind, "value": "5550001"})
        assert taken.status_code == 400 and taken.json()["reference"] == "value", (customer, kind, taken.text)
    # Changing a medium to a value the studio has under another type is refused too; to its own value is not.
    pin = mission.post("/v1/customers/1002/access-mediums", json={"type": "PIN", "value": "5550002"}).json()
    moved = mission.put(f"/v1/customers/1002/access-mediums/{pin['id']}", json={"value": "5550001"})
    assert moved.status_code == 400 and moved.json()["reference"] == "value"
    assert mission.put(f"/v1/customers/1002/access-mediums/{pin['id']}", json={"value": "5550002"}).status_code == 200
    # Another studio is another tenant: its values are its own.
    harbour = mock.client("magicline", headers={"X-API-KEY": "demo-magicline-harbour"})
    assert (
        harbour.post("/v1/customers/2001/access-mediums", json={"type": "PIN", "value": "5550001"}).status_code == 200
    )
    # Once the card is gone, its value is free again.
    assert mission.delete(f"/v1/customers/1001/access-mediums/{card.json()['id']}").status_code == 200
    assert (
        mission.post("/v1/customers/1002/access-mediums", json={"type": "PIN", "value": "5550001"}).status_code == 200
    )


def test_magicline_slices_by_cursor(mock: RunningMock) -> None:
    magicline = mock.client("magicline", headers={"X-API-KEY": "demo-magicline-mission"})
    everyone = magicline.get("/v1/customers").json()
    assert [c["id"] for c in everyone["result"]] == [1001, 1002, 1003, 1004] and everyone["hasNext"] is False
    members = magicline.get("/v1/customers", params={"customerStatus": "MEMBER"}).json()["result"]
    assert [c["id"] for c in members] == [1001, 1002]
    after = magicline.get("/v1/customers", params={"offset": "1002"}).json()
    assert [c["id"] for c in after["result"]] == [1003, 1004] and after["offset"] == "1004"


def test_the_seam_oauth_dance(mock: RunningMock) -> None:
    seam = mock.client("seam")
    redirect = "https://connect.integrations.getseam.com/oauth/callback?provider=doorcodes"
    page = seam.get("/authorize", params={"redirect_uri": redirect, "state": "xyz"})
    assert page.status_code == 200 and "<form" in page.text and "text/html" in page.headers["content-type"]
    for evil in ("https://evil.example.com/cb", "http://connect.integrations.getseam.com/cb", "not a uri"):
        refused = seam.get("/authorize", params={"redirect_uri": evil})
        assert refused.status_code == 400 and refused.json()["error_id"] == "INVALID_REDIRECT_URI", evil
        posted = seam.post("/authorize", data={"email": "a", "password": "b", "redirect_uri": evil})
        assert posted.status_code == 400 and posted.json()["error_id"] == "INVALID_REDIRECT_URI", evil
    missing = seam.get("/authorize")
    assert missing.status_code == 400 and missing.json()["error_id"] == "INVALID_INPUT"

    wrong = seam.post("/authorize", data={"email": "alice@demo.test", "password": "nope", "redirect_uri": redirect})
    assert wrong.status_code == 401
    login = seam.post(
        "/authorize",
        data={"email": "alice@demo.test", "password": "alice-password", "redirect_uri": redirect, "state": "xyz"},
    )
    assert login.status_code == 302
    location = login.headers["location"]
    assert location.startswith(redirect + "&code=") and location.endswith("&state=xyz")
    code = httpx.URL(location).params["code"]

    token = seam.post("/oauth/token", data={"code": code, "client_id": "seam", "client_secret": "seamsecret"})
    assert token.status_code == 200
    access = token.json()["access_token"]
    intercoms = seam.get("/door_locks", headers={"Authorization": f"Bearer {access}"}).json()["intercoms"]
    assert {i["name"] for i in intercoms} == {"House", "Back Door"}
    # A code works once.
    again = seam.post("/oauth/token", json={"code": code, "client_id": "seam", "client_secret": "seamsecret"})
    assert again.status_code == 400 and again.json()["error_id"] == "INVALID_GRANT"
    bad_client = seam.post("/oauth/token", json={"code": "x", "client_id": "seam", "client_secret": "wrong"})
    assert bad_client.status_code == 401 and bad_client.json()["error_id"] == "INVALID_CLIENT"
