"""Malformed input of every kind gets the vendor's own error, validates against the contract, and changes nothing.

Each case names the status the vendor answers and the field (Magicline `reference`, a Laravel `errors` key) or
error id (Seam) the body must name. After every rejected request the whole state is compared with a snapshot taken
before it, so a validation that runs after a write, or a half-applied write, fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml

from mockserver.contracts import contract_path
from mockserver.testing import RunningMock, start_mock
from tests.mockserver.contract_audit import assert_conforms, state_of
from tests.specs import resolve_refs

START = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
HUGE = "9" * 40
ML_KEY = {"X-API-KEY": "demo-magicline-mission"}
ML_READONLY = {"X-API-KEY": "demo-magicline-mission-readonly"}
SEAM_AUTH = {"Authorization": "Bearer demo-seam-alice"}
VMS_AUTH = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "malformed-tests"}
HOUSE_UUID = "3043fde0-3c6d-4913-981f-2607f05fe74e"
BOBS_UUID = "7d9e2b41-6a3c-4f58-9e21-4c8b0a7f5d90"
JSON = {"content-type": "application/json"}
FUTURE = "2030-02-01 10:00"


@dataclass
class Case:
    id: str
    method: str
    path: str
    status: int
    #: Magicline `reference`, a Laravel `errors` key, or a Seam `error_id`; None when the body names nothing
    names: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    json_body: Any = None
    content: bytes | None = None

    def send(self, client: httpx.Client) -> httpx.Response:
        kwargs: dict[str, Any] = {"headers": self.headers, "params": self.params}
        if self.content is not None:
            kwargs["content"] = self.content
        elif self.json_body is not None:
            kwargs["json"] = self.json_body
        return client.request(self.method, self.path, **kwargs)


def ml(id: str, method: str, path: str, status: int, names: str | None = None, **kw: Any) -> Case:
    kw.setdefault("headers", ML_KEY)
    return Case(id, method, "/magicline" + path, status, names, **kw)


def seam(id: str, method: str, path: str, status: int, names: str | None = None, **kw: Any) -> Case:
    kw.setdefault("headers", SEAM_AUTH)
    return Case(id, method, "/seam" + path, status, names, **kw)


def vms(id: str, method: str, path: str, status: int, names: str | None = None, **kw: Any) -> Case:
    kw.setdefault("headers", VMS_AUTH)
    return Case(id, method, "/vms" + path, status, names, **kw)


MEDIUMS = "/v1/customers/1001/access-mediums"
CASES = [
    # Magicline: the key, then every kind of bad parameter and body.
    ml("ml-no-key", "GET", "/v1/customers/1001", 401, headers={}),
    ml("ml-wrong-key", "GET", "/v1/customers/1001", 401, headers={"X-API-KEY": "nope"}),
    ml("ml-empty-key", "GET", "/v1/customers/1001", 401, headers={"X-API-KEY": ""}),
    ml("ml-head-no-key", "HEAD", "/v1/customers/1001", 401, headers={}),
    ml("ml-no-scope", "POST", MEDIUMS, 403, json_body={"type": "PIN", "value": "2468"}, headers=ML_READONLY),
    ml("ml-id-text", "GET", "/v1/customers/abc", 400, "customerId"),
    ml("ml-id-huge", "GET", f"/v1/customers/{HUGE}", 400, "customerId"),
    ml("ml-id-float", "GET", "/v1/customers/1001.5", 400, "customerId"),
    ml("ml-id-unicode", "GET", "/v1/customers/%F0%9F%9A%AA", 400, "customerId"),
    ml("ml-id-other-studio", "GET", "/v1/customers/2001", 404),
    ml("ml-id-missing", "GET", "/v1/customers/424242", 404),
    ml("ml-code-other-studio", "GET", "/v1/customers/2001/access-code", 404),
    ml("ml-slice-text", "GET", "/v1/customers", 400, "sliceSize", params={"sliceSize": "lots"}),
    ml("ml-slice-small", "GET", "/v1/customers", 400, "sliceSize", params={"sliceSize": "-1"}),
    ml("ml-offset-huge", "GET", "/v1/customers", 400, "offset", params={"offset": HUGE}),
    ml("ml-bad-json", "POST", MEDIUMS, 400, content=b'{"type": "PIN",', headers=ML_KEY | JSON),
    ml("ml-json-array", "POST", MEDIUMS, 400, json_body=[{"type": "PIN", "value": "1"}]),
    ml("ml-json-string", "POST", MEDIUMS, 400, content=b'"PIN"', headers=ML_KEY | JSON),
    ml("ml-empty-body", "POST", MEDIUMS, 400, content=b"", headers=ML_KEY | JSON),
    ml("ml-missing-type", "POST", MEDIUMS, 400, "type", json_body={"value": "2468"}),
    ml("ml-missing-value", "POST", MEDIUMS, 400, "value", json_body={"type": "PIN"}),
    ml("ml-bad-type", "POST", MEDIUMS, 400, "type", json_body={"type": "RETINA", "value": "2468"}),
    ml("ml-value-number", "POST", MEDIUMS, 400, "value", json_body={"type": "PIN", "value": 2468}),
    ml("ml-value-null", "POST", MEDIUMS, 400, "value", json_body={"type": "PIN", "value": None}),
    ml(
        "ml-text-plain",
        "POST",
        MEDIUMS,
        400,
        content=b"type=PIN",
        headers=ML_KEY | {"content-type": "text/plain"},
    ),
    ml(
        "ml-not-utf8",
        "POST",
        MEDIUMS,
        400,
        content=b'{"type": "PIN", "value": "\xff\xfe"}',
        headers=ML_KEY | JSON,
    ),
    ml(
        "ml-oversized",
        "POST",
        MEDIUMS,
        400,
        content=json.dumps({"type": "PIN", "value": "1" * 2_000_000}).encode(),
        headers=ML_KEY | JSON,
    ),
    ml("ml-no-content-type", "POST", MEDIUMS, 400, "Content-Type", content=b'{"type": "PIN", "value": "2468"}'),
    # JSON has no charset (RFC 8259): bytes that are not UTF-8 stay malformed whatever the header declares.
    ml(
        "ml-latin-1-declared",
        "POST",
        MEDIUMS,
        400,
        content=b'{"type": "PIN", "value": "G\xe4"}',
        headers=ML_KEY | {"content-type": "application/json;charset=latin-1"},
    ),
    ml("ml-medium-id-text", "PUT", MEDIUMS + "/card", 400, "accessMediumId", json_body={"value": "2468"}),
    ml("ml-medium-id-huge", "DELETE", MEDIUMS + "/" + HUGE, 400, "accessMediumId"),
    ml("ml-medium-missing", "DELETE", MEDIUMS + "/987654", 404),
    ml("ml-medium-other-customer", "DELETE", "/v1/customers/1001/access-mediums/1102", 404),
    ml("ml-unknown-path", "GET", "/v1/nothing-here", 404),
    ml("ml-wrong-method", "PATCH", "/v1/customers", 405),
    # Seam: bearer tokens, ids and the unlock and token bodies.
    seam("seam-no-token", "GET", "/door_locks", 401, headers={}),
    seam("seam-wrong-token", "GET", "/door_locks", 401, headers={"Authorization": "Bearer nope"}),
    seam("seam-basic-auth", "GET", "/door_locks", 401, headers={"Authorization": "Basic c2VhbTpzZWFt"}),
    seam("seam-no-intercom", "GET", "/access_codes", 400, "INVALID_INPUT"),
    # An id the contract types as a UUID that is not one is malformed (every such parameter: see below).
    seam("seam-intercom-not-uuid", "GET", "/access_codes", 400, "INVALID_INPUT", params={"intercom_id": "180"}),
    seam("seam-intercom-other-owner", "GET", "/access_codes", 404, params={"intercom_id": BOBS_UUID}),
    seam("seam-code-not-uuid", "GET", "/access_codes/1234", 400, "INVALID_INPUT"),
    seam("seam-code-unknown", "DELETE", "/access_codes/" + "0" * 8 + "-0000-4000-8000-" + "0" * 12, 404),
    seam(
        "seam-unlock-bad-json",
        "POST",
        f"/intercoms/{HOUSE_UUID}/unlock",
        400,
        "INVALID_INPUT",
        content=b"{",
        headers=SEAM_AUTH | JSON,
    ),
    seam(
        "seam-unlock-latin-1-declared",
        "POST",
        f"/intercoms/{HOUSE_UUID}/unlock",
        400,
        "INVALID_INPUT",
        content=b'{"note": "G\xe4"}',
        headers=SEAM_AUTH | {"content-type": "application/json;charset=latin-1"},
    ),
    seam(
        "seam-unlock-time-text",
        "POST",
        f"/intercoms/{HOUSE_UUID}/unlock",
        400,
        "INVALID_INPUT",
        json_body={"unlock_time": "soon"},
    ),
    seam(
        "seam-unlock-time-negative",
        "POST",
        f"/intercoms/{HOUSE_UUID}/unlock",
        400,
        "INVALID_INPUT",
        json_body={"unlock_time": -5},
    ),
    seam(
        "seam-unlock-time-huge",
        "POST",
        f"/intercoms/{HOUSE_UUID}/unlock",
        400,
        "INVALID_INPUT",
        json_body={"unlock_time": 10**30},
    ),
    seam(
        "seam-unlock-array",
        "POST",
        f"/intercoms/{HOUSE_UUID}/unlock",
        400,
        "INVALID_INPUT",
        json_body=[{"unlock_time": "5000"}],
    ),
    seam(
        "seam-unlock-no-content-type",
        "POST",
        f"/intercoms/{HOUSE_UUID}/unlock",
        400,
        "INVALID_INPUT",
        content=b'{"unlock_time": "5000"}',
    ),
    seam("seam-unlock-other-owner", "POST", f"/intercoms/{BOBS_UUID}/unlock", 404, json_body={"unlock_time": "5000"}),
    seam("seam-token-bad-json", "POST", "/oauth/token", 400, content=b"{", headers=JSON),
    seam("seam-token-empty", "POST", "/oauth/token", 400, json_body={}, headers={}),
    seam(
        "seam-token-wrong-secret",
        "POST",
        "/oauth/token",
        401,
        "INVALID_CLIENT",
        json_body={"code": "x" * 32, "client_id": "seam", "client_secret": "guess"},
        headers={},
    ),
    seam(
        "seam-token-unknown-code",
        "POST",
        "/oauth/token",
        400,
        "INVALID_GRANT",
        json_body={"code": "x" * 32, "client_id": "seam", "client_secret": "seamsecret"},
        headers={},
    ),
    seam("seam-unknown-path", "GET", "/locks", 404),
    seam("seam-wrong-method", "PUT", "/access_codes", 405),
    # VMS: Laravel's 401 and 422 bodies, naming each field.
    vms("vms-no-token", "GET", "/api/v1/intercom/codes", 401, headers={"X-Client": "web", "X-UUID": "x"}),
    vms("vms-wrong-token", "GET", "/api/v1/intercom/codes", 401, headers=VMS_AUTH | {"Authorization": "Bearer no"}),
    vms(
        "vms-no-client-header",
        "GET",
        "/api/v1/intercom/codes",
        422,
        "x-client",
        headers={"Authorization": "Bearer demo-vms-alice", "X-UUID": "x"},
    ),
    vms(
        "vms-bad-client-header",
        "GET",
        "/api/v1/intercom/codes",
        422,
        "x-client",
        headers=VMS_AUTH | {"X-Client": "fridge"},
    ),
    vms("vms-page-text", "GET", "/api/v1/intercom/codes", 422, "page", params={"page": "two"}),
    vms("vms-page-zero", "GET", "/api/v1/intercom/codes", 422, "page", params={"page": "0"}),
    vms("vms-page-huge", "GET", "/api/v1/intercom/codes", 422, "page", params={"page": HUGE}),
    vms("vms-per-page-big", "GET", "/api/v1/intercom/codes", 422, "per_page", params={"per_page": "101"}),
    vms("vms-create-no-title", "POST", "/api/v1/intercom/180/codes", 422, "title", json_body={"expired_at": FUTURE}),
    vms(
        "vms-create-blank-title",
        "POST",
        "/api/v1/intercom/180/codes",
        422,
        "title",
        json_body={"title": "   ", "expired_at": FUTURE},
    ),
    vms(
        "vms-create-long-title",
        "POST",
        "/api/v1/intercom/180/codes",
        422,
        "title",
        json_body={"title": "t" * 256, "expired_at": FUTURE},
    ),
    vms(
        "vms-create-title-number",
        "POST",
        "/api/v1/intercom/180/codes",
        422,
        "title",
        json_body={"title": 12345, "expired_at": FUTURE},
    ),
    vms(
        "vms-create-date-iso",
        "POST",
        "/api/v1/intercom/180/codes",
        422,
        "expired_at",
        json_body={"title": "Guest", "expired_at": "2030-02-01T10:00:00Z"},
    ),
    vms(
        "vms-create-date-impossible",
        "POST",
        "/api/v1/intercom/180/codes",
        422,
        "expired_at",
        json_body={"title": "Guest", "expired_at": "2030-02-30 10:00"},
    ),
    vms(
        "vms-create-date-past",
        "POST",
        "/api/v1/intercom/180/codes",
        422,
        "expired_at",
        json_body={"title": "Guest", "expired_at": "2029-12-31 23:59"},
    ),
    vms(
        "vms-create-bad-json",
        "POST",
        "/api/v1/intercom/180/codes",
        422,
        "title",
        content=b'{"title": "Guest"',
        headers=VMS_AUTH | JSON,
    ),
    vms(
        "vms-create-latin-1-declared",
        "POST",
        "/api/v1/intercom/180/codes",
        422,
        "title",
        content=json.dumps({"title": "Gäste", "expired_at": FUTURE}, ensure_ascii=False).encode("latin-1"),
        headers=VMS_AUTH | {"content-type": "application/json;charset=latin-1"},
    ),
    vms(
        "vms-create-oversized",
        "POST",
        "/api/v1/intercom/180/codes",
        422,
        content=json.dumps({"title": "é" * 1_500_000, "expired_at": FUTURE}).encode(),
        headers=VMS_AUTH | JSON,
    ),
    vms(
        "vms-create-intercom-text",
        "POST",
        "/api/v1/intercom/house/codes",
        404,
        json_body={"title": "G", "expired_at": FUTURE},
    ),
    vms(
        "vms-create-intercom-huge",
        "POST",
        f"/api/v1/intercom/{HUGE}/codes",
        404,
        json_body={"title": "G", "expired_at": FUTURE},
    ),
    vms(
        "vms-create-other-user",
        "POST",
        "/api/v1/intercom/190/codes",
        404,
        json_body={"title": "G", "expired_at": FUTURE},
    ),
    vms(
        "vms-create-no-content-type",
        "POST",
        "/api/v1/intercom/180/codes",
        422,
        "content-type",
        content=json.dumps({"title": "Guest", "expired_at": FUTURE}).encode(),
    ),
    vms("vms-delete-empty", "DELETE", "/api/v1/intercom/codes", 422, "ids", json_body={"ids": []}),
    vms("vms-delete-too-many", "DELETE", "/api/v1/intercom/codes", 422, "ids", json_body={"ids": list(range(1, 202))}),
    vms("vms-delete-text-ids", "DELETE", "/api/v1/intercom/codes", 422, "ids.0", json_body={"ids": ["one"]}),
    vms("vms-delete-huge-id", "DELETE", "/api/v1/intercom/codes", 422, "ids.0", json_body={"ids": [int(HUGE)]}),
    vms("vms-delete-ids-object", "DELETE", "/api/v1/intercom/codes", 422, "ids", json_body={"ids": {"a": 1}}),
    vms(
        "vms-token-missing",
        "POST",
        "/api/v1/token",
        422,
        "login",
        json_body={"password": "x"},
        headers={"X-Client": "web", "X-UUID": "x"},
    ),
    vms(
        "vms-auth-bad-socket",
        "POST",
        "/api/v1/broadcasting/auth",
        422,
        "socket_id",
        json_body={"socket_id": "abc", "channel_name": "private-user.13"},
    ),
    # Media types are case-insensitive (RFC 9110 §8.3.1): a mixed-case one is validated like its lowercase spelling.
    ml(
        "ml-json-mixed-case",
        "POST",
        MEDIUMS,
        400,
        "value",
        json_body={"type": "PIN"},
        headers=ML_KEY | {"content-type": "Application/JSON"},
    ),
    seam(
        "seam-unlock-json-upper-case",
        "POST",
        f"/intercoms/{HOUSE_UUID}/unlock",
        400,
        "INVALID_INPUT",
        json_body={"unlock_time": "soon"},
        headers=SEAM_AUTH | {"content-type": "APPLICATION/JSON; charset=utf-8"},
    ),
    vms(
        "vms-auth-form-mixed-case",
        "POST",
        "/api/v1/broadcasting/auth",
        422,
        "socket_id",
        content=b"socket_id=abc&channel_name=private-user.13",
        headers=VMS_AUTH | {"content-type": "Application/X-WWW-Form-Urlencoded"},
    ),
    vms("vms-unknown-path", "GET", "/api/v1/nothing", 404),
    vms("vms-wrong-method", "PUT", "/api/v1/intercom/codes", 405),
]


def _not_a_uuid_cases() -> list[Case]:
    """One case per Seam operation and path or query parameter the contract types as a UUID: a value that is not
    one is answered 400 INVALID_INPUT (the other parameters valid)."""
    spec = yaml.safe_load(contract_path("seam").read_text())
    bodies = {"unlockIntercom": {"unlock_time": "5000"}}
    cases = []
    for template, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            parameters = [resolve_refs(p, spec) for p in item.get("parameters", []) + operation.get("parameters", [])]
            typed = [p for p in parameters if p["in"] in ("path", "query") and p["schema"].get("format") == "uuid"]
            for broken in typed:
                values = {p["name"]: "not-a-uuid" if p is broken else HOUSE_UUID for p in typed}
                path = template.format(**{p["name"]: values[p["name"]] for p in typed if p["in"] == "path"})
                query = {p["name"]: values[p["name"]] for p in typed if p["in"] == "query"} or None
                cases.append(
                    seam(
                        f"seam-{operation['operationId']}-{broken['name']}-not-uuid",
                        method.upper(),
                        path,
                        400,
                        "INVALID_INPUT",
                        params=query,
                        json_body=bodies.get(operation["operationId"]),
                    )
                )
    return cases


NOT_A_UUID = _not_a_uuid_cases()


def test_every_seam_uuid_parameter_is_covered() -> None:
    covered = {case.id.split("-")[1] for case in NOT_A_UUID}
    assert covered == {"getIntercom", "unlockIntercom", "listAccessCodes", "getAccessCode", "deleteAccessCode"}


CASES.extend(NOT_A_UUID)


@pytest.fixture(scope="module", params=["validated", "direct"])
def mock(request: pytest.FixtureRequest) -> Iterator[RunningMock]:
    """Once with Connexion's response validation (the full middleware chain), once as users run it (operations
    reached directly by `mockserver.http.fast_routing`)."""
    with start_mock(seed=5, start=START, validate_responses=request.param == "validated") as running:
        yield running


@pytest.fixture(scope="module")
def client(mock: RunningMock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.base_url, timeout=30) as client:
        yield client


def _named(case: Case, body: Any) -> list[str]:
    if case.path.startswith("/magicline"):
        reference = body.get("reference") or ""
        return [reference] + [arg.get("value", "") for arg in body.get("arguments") or []]
    if case.path.startswith("/seam"):
        return [body["error_id"]]
    return list(body.get("errors", {}))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_request_gets_the_vendors_error_and_changes_nothing(case: Case, client: httpx.Client) -> None:
    before = state_of(client)
    response = case.send(client)
    assert response.status_code == case.status, response.text[:500]
    assert_conforms(response)
    if case.method != "HEAD":
        body = response.json()
        if case.names is not None:
            assert case.names in _named(case, body), body
        if case.path.startswith("/magicline"):
            assert body["errorMessage"] and body["traceId"]
        elif case.path.startswith("/vms") and case.status == 401:
            assert body == {"message": "Unauthenticated."}
        elif case.path.startswith("/vms") and case.status == 422:
            assert body["message"] and all(body["errors"].values())
    assert state_of(client) == before


@pytest.mark.parametrize(
    ("expired_at", "message"),
    [
        ("2030-02-30 10:00", "The expired at field must be a valid date."),
        ("2031-02-29 10:00", "The expired at field must be a valid date."),
        ("2030-13-01 10:00", "The expired at field must match the format Y-m-d H:i."),
        ("2030-02-01T10:00", "The expired at field must match the format Y-m-d H:i."),
        ("2029-12-31 10:00", "The expired at field must be a date after now."),
    ],
)
def test_vms_says_which_rule_an_expiry_breaks(expired_at: str, message: str, client: httpx.Client) -> None:
    before = state_of(client)
    response = client.post(
        "/vms/api/v1/intercom/180/codes", headers=VMS_AUTH, json={"title": "Guest", "expired_at": expired_at}
    )
    assert response.status_code == 422
    assert response.json() == {"message": message, "errors": {"expired_at": [message]}}
    assert_conforms(response)
    assert state_of(client) == before
