"""The mock's choices (mockserver/choices.py): each value does what `mockserver choices` says, through every way
to set it, and every answer still validates against the contract (response validation is on)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from mockserver.choices import CHOICES, PRESETS, ChoiceError, Choices
from mockserver.contracts import load_contract
from mockserver.testing import RunningMock, start_mock

START = datetime(2031, 5, 1, 9, 0, tzinfo=UTC)
VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "choices-test"}
SEAM = {"Authorization": "Bearer demo-seam-alice"}
MAGICLINE = {"X-API-KEY": "demo-magicline-mission"}
ALICE_INTERCOM = "3043fde0-3c6d-4913-981f-2607f05fe74e"
BOB_INTERCOM = "7d9e2b41-6a3c-4f58-9e21-4c8b0a7f5d90"


@pytest.fixture(scope="module")
def mock() -> Iterator[RunningMock]:
    with start_mock(seed=3, start=START, validate_responses=True) as running:
        yield running


@pytest.fixture
def http(mock: RunningMock) -> Iterator[httpx.Client]:
    with mock.client() as client:
        client.post("/_mock/reset").raise_for_status()
        mock.clock.set(START)
        yield client


def choose(http: httpx.Client, **values: str) -> dict[str, Any]:
    answer = http.put("/_mock/choices", json={"values": {k.replace("__", "."): v for k, v in values.items()}})
    assert answer.status_code == 200, answer.text
    return {item["name"]: item["value"] for item in answer.json()["choices"]}


def create_code(
    http: httpx.Client, title: str = "Guest", expired_at: str = "2031-05-02 10:00", intercom: int = 180
) -> httpx.Response:
    return http.post(
        f"/vms/api/v1/intercom/{intercom}/codes", headers=VMS, json={"title": title, "expired_at": expired_at}
    )


# ---------------------------------------------------------------------------------------------- the list


def test_there_are_ten_or_more_choices_each_with_values_a_default_and_a_reason() -> None:
    assert len(CHOICES) >= 10
    for choice in CHOICES:
        assert len(choice.values) >= 2 and choice.default in choice.values and choice.lenient in choice.values
        assert choice.reason and all(choice.values.values())


def test_every_choice_governs_a_marked_place_in_a_contract_and_every_mark_names_a_real_choice() -> None:
    named = {mark.choice for api in ("vms", "seam", "magicline") for mark in load_contract(api).marks() if mark.choice}
    assert named == {choice.name for choice in CHOICES}


def test_every_mark_in_the_contracts_gives_its_reason() -> None:
    for api in ("vms", "seam", "magicline"):
        marks = load_contract(api).marks()
        assert marks, api
        for mark in marks:
            assert len(mark.reason) > 20, (api, mark.where)


def test_mockserver_choices_prints_the_table_and_json() -> None:
    table = subprocess.run([sys.executable, "-m", "mockserver", "choices"], capture_output=True, text=True, check=True)
    for choice in CHOICES:
        assert choice.name in table.stdout and choice.reason in table.stdout
    raw = subprocess.run(
        [sys.executable, "-m", "mockserver", "choices", "--json"], capture_output=True, text=True, check=True
    )
    listed = json.loads(raw.stdout)
    assert [item["name"] for item in listed] == [choice.name for choice in CHOICES]
    for item in listed:
        assert set(item) >= {"name", "api", "values", "default", "reason"}
        assert item["api"] in ("vms", "seam", "magicline", None)


def test_presets_and_assignments_are_checked() -> None:
    lenient = Choices.from_arguments(preset="lenient")
    assert lenient.to_dict() == PRESETS["lenient"] and lenient.non_default()
    assert Choices.from_arguments(["vms.list_order=oldest_first"]).value("vms.list_order") == "oldest_first"
    for wrong in (["vms.list_order"], ["no.such=thing"], ["vms.list_order=sideways"]):
        with pytest.raises(ChoiceError):
            Choices.from_arguments(wrong)


# ---------------------------------------------------------------------------------------------- setting them


def test_the_control_api_sets_checks_and_resets_choices(http: httpx.Client) -> None:
    assert choose(http, vms__list_order="oldest_first")["vms.list_order"] == "oldest_first"
    refused = http.put("/_mock/choices", json={"values": {"vms.list_order": "sideways"}})
    assert refused.status_code == 400 and refused.headers["content-type"] == "application/problem+json"
    values = {item["name"]: item["value"] for item in http.get("/_mock/choices").json()["choices"]}
    assert values["vms.list_order"] == "oldest_first"  # a refused change changes nothing
    lenient = http.put("/_mock/choices", json={"preset": "lenient"}).json()["choices"]
    assert all(item["value"] == item["lenient"] for item in lenient)
    http.post("/_mock/reset").raise_for_status()
    assert all(item["value"] == item["default"] for item in http.get("/_mock/choices").json()["choices"])


def test_choices_given_at_start_survive_a_reset_and_a_restart(tmp_path: Any) -> None:
    state = tmp_path / "building.db"
    with start_mock(seed=0, state_path=state, choices={"seam.health_auth": "bearer"}) as mock, mock.client() as http:
        assert http.get(mock.urls["seam"] + "/health").status_code == 401
        http.post(mock.urls["control"] + "/reset").raise_for_status()
        assert http.get(mock.urls["seam"] + "/health").status_code == 401
        http.put(mock.urls["control"] + "/choices", json={"values": {"vms.list_order": "oldest_first"}})
    with start_mock(seed=0, state_path=state) as mock, mock.client() as http:
        values = {i["name"]: i["value"] for i in http.get(mock.urls["control"] + "/choices").json()["choices"]}
        # What was in force is what comes back.
        assert values["vms.list_order"] == "oldest_first" and values["seam.health_auth"] == "public"


def test_fixtures_may_set_choices() -> None:
    from mockserver.app import load_fixtures

    fixtures = {**load_fixtures(None), "choices": {"magicline.offset": "opaque"}}
    with start_mock(seed=0, fixtures=fixtures) as mock:
        body = mock.client("magicline").get("/v1/customers", headers=MAGICLINE).json()
        assert not body["offset"].isdigit()


# ---------------------------------------------------------------------------------------------- each behaviour


def test_list_order(http: httpx.Client) -> None:
    ids = [create_code(http, f"c{n}").json()["id"] for n in range(3)]
    newest = [c["id"] for c in http.get("/vms/api/v1/intercom/codes", headers=VMS).json()["data"]]
    assert newest[:3] == ids[::-1]
    choose(http, vms__list_order="oldest_first")
    oldest = [c["id"] for c in http.get("/vms/api/v1/intercom/codes", headers=VMS).json()["data"]]
    assert oldest == sorted(oldest) and oldest[-3:] == ids


@pytest.mark.parametrize(
    ("form", "pattern"),
    [
        ("ymd_his", r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"),
        ("iso_micro", r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"),
        ("null", None),
    ],
)
def test_intercom_created_at(form: str, pattern: str | None) -> None:
    import re

    from mockserver.app import load_fixtures

    demo = load_fixtures(None)
    # The demo's intercoms show null, as the seed does; this building knows when 180 was made.
    intercoms = [{**i, "created_at": "2022-04-18T17:25:56+00:00"} if i["id"] == 180 else i for i in demo["intercoms"]]
    fixtures = {**demo, "intercoms": intercoms, "choices": {"vms.intercom_created_at": form}}
    with (
        start_mock(seed=0, start=START, fixtures=fixtures, validate_responses=True) as mock,
        mock.client() as http,
    ):
        code = create_code(http).json()
        listed = http.get("/vms/api/v1/intercom/codes", headers=VMS).json()["data"][0]
    for value in (code["intercom"]["created_at"], listed["intercom"]["created_at"]):
        assert (value is None) if pattern is None else re.match(pattern, value)


def test_bulk_delete_of_foreign_ids(http: httpx.Client) -> None:
    mine = create_code(http).json()["id"]
    bob = {**VMS, "Authorization": "Bearer demo-vms-bob"}
    assert http.request("DELETE", "/vms/api/v1/intercom/codes", headers=bob, json={"ids": [mine]}).status_code == 422
    choose(http, vms__bulk_delete_foreign="ignore")
    assert http.request("DELETE", "/vms/api/v1/intercom/codes", headers=bob, json={"ids": [mine]}).status_code == 204
    listed = [c["id"] for c in http.get("/vms/api/v1/intercom/codes", headers=VMS).json()["data"]]
    assert mine in listed  # skipped, not deleted
    other = create_code(http).json()["id"]
    gone = http.request("DELETE", "/vms/api/v1/intercom/codes", headers=VMS, json={"ids": [other, 999999]})
    assert gone.status_code == 204
    assert other not in [c["id"] for c in http.get("/vms/api/v1/intercom/codes", headers=VMS).json()["data"]]


def test_past_expiry(http: httpx.Client) -> None:
    assert create_code(http, expired_at="2031-04-30 10:00").status_code == 422
    choose(http, vms__past_expiry="accept")
    code = create_code(http, expired_at="2031-04-30 10:00")
    assert code.status_code == 200 and code.json()["is_expired"] is True


def test_client_headers(http: httpx.Client) -> None:
    bare = {"Authorization": VMS["Authorization"]}
    assert http.get("/vms/api/v1/intercom/codes", headers=bare).status_code == 422
    choose(http, vms__client_headers="accept")
    assert http.get("/vms/api/v1/intercom/codes", headers=bare).status_code == 200
    assert http.get("/vms/api/v1/intercom/codes", headers={**bare, "X-Client": "toaster"}).status_code == 200


def test_invalid_page(http: httpx.Client) -> None:
    assert http.get("/vms/api/v1/intercom/codes", headers=VMS, params={"page": "abc"}).status_code == 422
    choose(http, vms__invalid_page="first_page")
    for params in ({"page": "abc"}, {"page": "0"}, {"page": "-3", "per_page": "x"}):
        answer = http.get("/vms/api/v1/intercom/codes", headers=VMS, params=params)
        assert answer.status_code == 200
        assert answer.json()["meta"]["current_page"] == 1
    assert http.get("/vms/api/v1/intercom/codes", headers=VMS, params={"per_page": 0}).json()["meta"]["per_page"] == 25
    # A page past PHP's integer range reads as PHP_INT_MAX, as PHP casts it: an empty page, never a 500.
    huge = http.get("/vms/api/v1/intercom/codes", headers=VMS, params={"page": "20493503661490161268555877468602368"})
    assert huge.status_code == 200 and huge.json()["data"] == []
    assert huge.json()["meta"]["current_page"] == 2**63 - 1


def test_wsurl_auth(http: httpx.Client) -> None:
    headers = {"X-Client": "web", "X-UUID": "choices-test"}
    assert http.get("/vms/api/v1/wsurl", headers=headers).status_code == 200
    choose(http, vms__wsurl_auth="bearer")
    refused = http.get("/vms/api/v1/wsurl", headers=headers)
    assert refused.status_code == 401 and refused.json() == {"message": "Unauthenticated."}
    assert http.get("/vms/api/v1/wsurl", headers=VMS).status_code == 200


def test_health_auth(http: httpx.Client) -> None:
    assert http.get("/seam/health").json() == {"ok": True}
    choose(http, seam__health_auth="bearer")
    refused = http.get("/seam/health", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401 and refused.json()["error_id"] == "UNAUTHORIZED"
    assert http.get("/seam/health", headers=SEAM).json() == {"ok": True}


@pytest.mark.parametrize(
    ("value", "accepted", "refused"),
    [
        ("bounded", [0, "5000", 9_999_999], [10_000_000, "10000000"]),
        ("positive", [1, "5000", 50_000_000], [0, "0", -1]),
        ("unbounded", [0, 50_000_000, "123456789"], [-1, "abc", True]),
    ],
)
def test_unlock_time(http: httpx.Client, value: str, accepted: list[Any], refused: list[Any]) -> None:
    choose(http, seam__unlock_time=value)
    path = f"/seam/intercoms/{ALICE_INTERCOM}/unlock"
    for unlock in accepted:
        assert http.post(path, headers=SEAM, json={"unlock_time": unlock}).json() == {"ok": True}, unlock
    for unlock in refused:
        answer = http.post(path, headers=SEAM, json={"unlock_time": unlock})
        assert answer.status_code == 400 and answer.json()["error_id"] == "INVALID_INPUT", unlock


def test_foreign_status(http: httpx.Client) -> None:
    assert http.get(f"/seam/intercoms/{BOB_INTERCOM}", headers=SEAM).status_code == 404
    choose(http, seam__foreign_status="forbidden")
    answer = http.get(f"/seam/intercoms/{BOB_INTERCOM}", headers=SEAM)
    assert answer.status_code == 403 and answer.json()["error_id"] == "FORBIDDEN"
    assert http.get(f"/seam/intercoms/{ALICE_INTERCOM}", headers=SEAM).status_code == 200


def test_magicline_offset(http: httpx.Client) -> None:
    plain = http.get("/magicline/v1/customers", headers=MAGICLINE, params={"sliceSize": 50}).json()
    assert plain["offset"] == str(plain["result"][-1]["id"])
    choose(http, magicline__offset="opaque")
    first = http.get("/magicline/v1/customers", headers=MAGICLINE, params={"sliceSize": 50}).json()
    assert first["result"] == plain["result"] and not first["offset"].isdigit()
    decoded = base64.urlsafe_b64decode(first["offset"] + "=" * (-len(first["offset"]) % 4)).decode()
    assert decoded.endswith(str(first["result"][-1]["id"]))
    after = http.get("/magicline/v1/customers", headers=MAGICLINE, params={"offset": first["offset"]}).json()
    assert after["result"] == []
    bad = http.get("/magicline/v1/customers", headers=MAGICLINE, params={"offset": "1004"})
    assert bad.status_code == 400 and bad.json()["reference"] == "offset"


def test_limits(http: httpx.Client) -> None:
    long_hl = {**VMS, "hl": "x" * 40}
    assert http.get("/vms/api/v1/intercom/codes", headers=long_hl).status_code == 422
    choose(http, limits="ignore")
    assert http.get("/vms/api/v1/intercom/codes", headers=long_hl).status_code == 200
    assert create_code(http, title="t" * 400).status_code == 200
    lang = {**MAGICLINE, "Accept-Language": "de-" + "x" * 300}
    assert http.get("/magicline/v1/customers/1001", headers=lang).status_code == 200


def test_unsupported_method(http: httpx.Client) -> None:
    answer = http.request("PATCH", "/seam/door_locks", headers=SEAM)
    assert answer.status_code == 405 and answer.headers["allow"]
    choose(http, unsupported_method="not_found")
    for path, headers in (("/seam/door_locks", SEAM), ("/magicline/v1/customers", MAGICLINE)):
        assert http.request("PATCH", path, headers=headers).status_code == 404
    assert http.request("PATCH", "/vms/api/v1/intercom/codes", headers=VMS).json()["message"]


def test_the_lenient_preset_answers_every_api_without_a_server_error(http: httpx.Client) -> None:
    http.put("/_mock/choices", json={"preset": "lenient"}).raise_for_status()
    code = create_code(http, expired_at="2031-04-01 00:00").json()
    assert code["is_expired"] is True
    for path, headers in (
        ("/vms/api/v1/intercom/codes?page=x", {"Authorization": VMS["Authorization"]}),
        (f"/seam/access_codes?intercom_id={ALICE_INTERCOM}", SEAM),
        ("/magicline/v1/customers?sliceSize=50", MAGICLINE),
    ):
        assert http.get(path, headers=headers).status_code == 200, path
