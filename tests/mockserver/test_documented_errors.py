"""Every error status every operation documents can be produced, and each validates against the contract.

The malformed-input catalogue (test_malformed) and the other modules produce the errors the building causes;
this module sweeps the rest of the table with the control API's faults, which answer only declared statuses in the
vendor's body. Then random input of every shape, thrown at every operation, never gets a 5xx or an answer the
contract does not declare, and a rejected request never changes the state.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockserver.contracts import contract_path
from mockserver.testing import RunningMock, start_mock
from tests.mockserver.contract_audit import assert_conforms, state_of

START = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
ML = {"X-API-KEY": "demo-magicline-mission"}
SEAM = {"Authorization": "Bearer demo-seam-alice"}
VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "documented-errors"}
VMS_ANON = {"X-Client": "web", "X-UUID": "documented-errors"}
HOUSE = "3043fde0-3c6d-4913-981f-2607f05fe74e"
SEAM_REDIRECT = "https://connect.integrations.getseam.com/oauth/callback"

#: one valid request per operation: (method, path, keyword arguments for httpx); {code} is a code id found at run time
VALID: dict[tuple[str, str], tuple[str, str, dict[str, Any]]] = {
    ("magicline", "checkKeyCustomers"): ("HEAD", "/magicline/v1/customers", {"headers": ML}),
    ("magicline", "getCustomers"): ("GET", "/magicline/v1/customers", {"headers": ML}),
    ("magicline", "checkKeyCustomer"): ("HEAD", "/magicline/v1/customers/1001", {"headers": ML}),
    ("magicline", "getCustomerById"): ("GET", "/magicline/v1/customers/1001", {"headers": ML}),
    ("magicline", "checkKeyAccessCode"): ("HEAD", "/magicline/v1/customers/1001/access-code", {"headers": ML}),
    ("magicline", "getCustomerAccessCode"): ("GET", "/magicline/v1/customers/1001/access-code", {"headers": ML}),
    ("magicline", "checkKeyAccessMediums"): ("HEAD", "/magicline/v1/customers/1001/access-mediums", {"headers": ML}),
    ("magicline", "addAccessMediums"): (
        "POST",
        "/magicline/v1/customers/1001/access-mediums",
        {"headers": ML, "json": {"type": "PIN", "value": "97531"}},
    ),
    ("magicline", "checkKeyAccessMedium"): (
        "HEAD",
        "/magicline/v1/customers/1001/access-mediums/1101",
        {"headers": ML},
    ),
    ("magicline", "updateAccessMediums"): (
        "PUT",
        "/magicline/v1/customers/1001/access-mediums/1101",
        {"headers": ML, "json": {"value": "1290158200"}},
    ),
    ("magicline", "deleteAccessMediums"): (
        "DELETE",
        "/magicline/v1/customers/1001/access-mediums/1101",
        {"headers": ML},
    ),
    ("magicline", "checkKeyAccessMediumLegacy"): (
        "HEAD",
        "/magicline/v1/customers/1001/access-medium",
        {"headers": ML},
    ),
    ("magicline", "addAccessMedium"): (
        "PUT",
        "/magicline/v1/customers/1001/access-medium",
        {"headers": ML, "json": {"type": "BARCODE", "value": "4006381333931"}},
    ),
    ("seam", "authorizePage"): ("GET", "/seam/authorize", {"params": {"redirect_uri": SEAM_REDIRECT}}),
    ("seam", "authorizeLogin"): (
        "POST",
        "/seam/authorize",
        {"data": {"email": "alice@demo.test", "password": "alice-password", "redirect_uri": SEAM_REDIRECT}},
    ),
    ("seam", "exchangeToken"): (
        "POST",
        "/seam/oauth/token",
        {"json": {"code": "c" * 32, "client_id": "seam", "client_secret": "seamsecret"}},
    ),
    ("seam", "listIntercoms"): ("GET", "/seam/door_locks", {"headers": SEAM}),
    ("seam", "getIntercom"): ("GET", f"/seam/intercoms/{HOUSE}", {"headers": SEAM}),
    ("seam", "unlockIntercom"): (
        "POST",
        f"/seam/intercoms/{HOUSE}/unlock",
        {"headers": SEAM, "json": {"unlock_time": "5000"}},
    ),
    ("seam", "listAccessCodes"): ("GET", "/seam/access_codes", {"headers": SEAM, "params": {"intercom_id": HOUSE}}),
    ("seam", "getAccessCode"): ("GET", "/seam/access_codes/{code}", {"headers": SEAM}),
    ("seam", "deleteAccessCode"): ("DELETE", "/seam/access_codes/{code}", {"headers": SEAM}),
    ("seam", "health"): ("GET", "/seam/health", {}),
    ("vms", "login"): (
        "POST",
        "/vms/api/v1/token",
        {"headers": VMS_ANON, "json": {"login": "alice@demo.test", "password": "alice-password"}},
    ),
    ("vms", "listCodes"): ("GET", "/vms/api/v1/intercom/codes", {"headers": VMS}),
    ("vms", "deleteCodes"): ("DELETE", "/vms/api/v1/intercom/codes", {"headers": VMS, "json": {"ids": [1]}}),
    ("vms", "createCode"): (
        "POST",
        "/vms/api/v1/intercom/180/codes",
        {"headers": VMS, "json": {"title": "Guest", "expired_at": "2030-01-02 10:00"}},
    ),
    ("vms", "openDoor"): ("POST", "/vms/api/v1/intercom/180/open-door", {"headers": VMS}),
    ("vms", "getWsUrl"): ("GET", "/vms/api/v1/wsurl", {"headers": VMS_ANON}),
    ("vms", "authorizeChannel"): (
        "POST",
        "/vms/api/v1/broadcasting/auth",
        {"headers": VMS, "json": {"socket_id": "1234.5678", "channel_name": "private-user.13"}},
    ),
}


def _documented() -> list[tuple[str, str, int]]:
    pairs = []
    for api in ("magicline", "seam", "vms"):
        spec = yaml.safe_load(contract_path(api).read_text())
        for item in spec["paths"].values():
            for method, operation in item.items():
                if method not in ("get", "put", "post", "delete", "head", "patch"):
                    continue
                for status in operation["responses"]:
                    if status != "default" and int(status) >= 400:
                        pairs.append((api, operation["operationId"], int(status)))
    return pairs


DOCUMENTED = _documented()


@pytest.fixture(scope="module", params=["validated", "direct"])
def mock(request: pytest.FixtureRequest) -> Iterator[RunningMock]:
    """Once with Connexion's response validation (the full middleware chain), once as users run it (operations
    reached directly by `mockserver.http.fast_routing`)."""
    with start_mock(seed=9, start=START, validate_responses=request.param == "validated") as running:
        yield running


@pytest.fixture(scope="module")
def client(mock: RunningMock) -> Iterator[httpx.Client]:
    # In-process (`RunningMock.client`): what is under test is the app's answer, not the HTTP connection.
    with mock.client(timeout=30) as client:
        yield client


def _a_seam_code(client: httpx.Client) -> str:
    response = client.get("/seam/access_codes", headers=SEAM, params={"intercom_id": HOUSE})
    return response.json()["access_codes"][0]["access_code_id"]


def test_every_operation_has_a_valid_request_here() -> None:
    operations = {(api, operation) for api, operation, _ in DOCUMENTED}
    assert operations <= set(VALID)


@pytest.mark.parametrize(("api", "operation", "status"), DOCUMENTED, ids=[f"{a}-{o}-{s}" for a, o, s in DOCUMENTED])
def test_each_documented_error_can_be_produced_and_conforms(
    api: str, operation: str, status: int, client: httpx.Client
) -> None:
    client.post("/_mock/reset").raise_for_status()
    method, path, kwargs = VALID[(api, operation)]
    if "{code}" in path:
        path = path.format(code=_a_seam_code(client))
    before = state_of(client)
    if method == "HEAD":
        # HEAD only checks the key, before any fault could apply: its one documented error comes without a key.
        assert status == 401
        response = client.request(method, path)
    else:
        fault = client.post("/_mock/faults", json={"api": api, "operation_id": operation, "status": status, "count": 1})
        assert fault.status_code == 201, fault.text
        response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text[:300]
    assert_conforms(response)
    assert state_of(client) == before, "a request answered with an error changed the state"
    if method != "HEAD":
        # The fault was for one call only: the same request now reaches the building again.
        again = client.request(method, path, **kwargs)
        assert again.status_code < 500 or (api, operation) == ("seam", "health"), again.text[:300]
        assert_conforms(again)
        assert client.get("/_mock/faults").json() == {"faults": []}


# -- random input -------------------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
#: bodies shaped like the real ones, with random values in the fields the operations read
field_names = st.sampled_from(
    [
        "type",
        "value",
        "title",
        "expired_at",
        "ids",
        "unlock_time",
        "code",
        "client_id",
        "client_secret",
        "login",
        "password",
        "socket_id",
        "channel_name",
    ]
)
shaped_bodies = st.dictionaries(field_names, json_values, max_size=5)
#: mostly JSON, but also no type at all (curl --data-binary) and wrong ones
json_types = st.sampled_from(["application/json", "application/json", "application/json", None, "text/plain"])
raw_bodies = st.tuples(
    st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
    st.sampled_from([None, "application/json", "text/plain", "application/x-www-form-urlencoded", "application/xml"]),
)
segments = st.text(alphabet=string.printable + "äé日🚪", min_size=1, max_size=30)


@pytest.fixture(scope="module")
def fuzz_client(client: httpx.Client) -> httpx.Client:
    client.post("/_mock/reset").raise_for_status()
    return client


@pytest.mark.slow
@settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    operation=st.sampled_from(sorted(VALID)),
    body=st.one_of(
        st.tuples(shaped_bodies | json_values, json_types).map(lambda b: ("json", b)),
        raw_bodies.map(lambda b: ("raw", b)),
        json_types.map(lambda t: ("valid", (None, t))),
    ),
    segment=st.none() | segments,
    query=st.dictionaries(
        st.sampled_from(["page", "per_page", "offset", "sliceSize", "intercom_id", "lastId"]),
        st.text(max_size=25),
        max_size=3,
    ),
)
def test_random_input_never_breaks_the_mock(
    operation: tuple[str, str],
    body: tuple[str, Any],
    segment: str | None,
    query: dict[str, str],
    fuzz_client: httpx.Client,
) -> None:
    client = fuzz_client
    method, path, kwargs = VALID[operation]
    if "{code}" in path:
        path = path.format(code=quote(segment or "c0de", safe=""))
    elif segment is not None and path.rstrip("/").split("/")[-1].isdigit():
        # Replace the last id in the path with a random segment.
        path = path.rsplit("/", 1)[0] + "/" + quote(segment, safe="")
    kwargs = dict(kwargs)
    if method not in ("GET", "HEAD"):
        kind, value = body
        kwargs.pop("json", None)
        kwargs.pop("data", None)
        content, content_type = value
        if kind == "valid":  # the operation's own valid body, under a random content type
            content = VALID[operation][2].get("json", VALID[operation][2].get("data"))
        kwargs["content"] = content if kind == "raw" else json.dumps(content).encode()
        if content_type is not None:
            kwargs["headers"] = {**kwargs.get("headers", {}), "content-type": content_type}
    kwargs["params"] = {**kwargs.get("params", {}), **query}
    before = state_of(client)
    response = client.request(method, path, **kwargs)
    assert response.status_code < 500, response.text[:300]
    assert_conforms(response)
    if response.status_code >= 400:
        assert state_of(client) == before, "a rejected request changed the state"
    else:
        client.post("/_mock/reset").raise_for_status()
