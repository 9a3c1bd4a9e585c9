"""Browsers' CORS preflights: allowed ones pass, refused ones get the vendor's own error body."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mockserver.testing import RunningMock, start_mock

ORIGIN = {"Origin": "https://app.example"}


@pytest.fixture(scope="module")
def mock() -> Iterator[RunningMock]:
    with start_mock(seed=2) as running:
        yield running


def _preflight(mock: RunningMock, path: str, method: str, **headers: str) -> httpx.Response:
    return httpx.options(mock.base_url + path, headers={**ORIGIN, "Access-Control-Request-Method": method, **headers})


def test_a_preflight_for_a_standard_method_passes(mock: RunningMock) -> None:
    answer = _preflight(mock, "/vms/api/v1/intercom/codes", "DELETE", **{"Access-Control-Request-Headers": "x-uuid"})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["access-control-allow-headers"] == "x-uuid"


@pytest.mark.parametrize("method", ["PROPFIND", "get", "", "X-Y"])
def test_a_preflight_for_another_method_gets_the_vendors_405(mock: RunningMock, method: str) -> None:
    vms = _preflight(mock, "/vms/api/v1/wsurl", method)
    assert (vms.status_code, vms.headers["allow"]) == (405, "GET")
    assert vms.json() == {
        "message": f"The {method} method is not supported for route api/v1/wsurl. Supported methods: GET."
    }

    seam = _preflight(mock, "/seam/access_codes", method)
    assert seam.status_code == 405
    assert seam.json() == {"error_id": "METHOD_NOT_ALLOWED", "error_message": f"{method} is not allowed here"}

    magicline = _preflight(mock, "/magicline/v1/customers", method)
    assert (magicline.status_code, magicline.headers["allow"]) == (405, "HEAD, GET")
    assert magicline.json()["errorCode"] == "METHOD_NOT_ALLOWED" and magicline.json()["traceId"]

    control = _preflight(mock, "/_mock/clock", method)
    assert control.status_code == 405
    assert control.headers["content-type"] == "application/problem+json"
    assert control.json()["status"] == 405

    for answer in (vms, seam, magicline, control):
        assert answer.headers["vary"].startswith("Origin")


def test_a_private_network_preflight_gets_the_vendors_403(mock: RunningMock) -> None:
    private = {"Access-Control-Request-Private-Network": "true"}
    seam = _preflight(mock, "/seam/door_locks", "GET", **private)
    assert seam.status_code == 403
    assert seam.json()["error_id"] == "FORBIDDEN"
    vms = _preflight(mock, "/vms/api/v1/wsurl", "GET", **private)
    assert vms.status_code == 403 and set(vms.json()) == {"message"}
    control = _preflight(mock, "/_mock/clock", "GET", **private)
    assert control.status_code == 403 and control.json()["status"] == 403
