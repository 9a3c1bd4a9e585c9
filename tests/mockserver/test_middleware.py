"""`MockHttpMiddleware`, which every request passes: the control token, repeated headers, redirects."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mockserver.testing import RunningMock, start_mock

TOKEN = "t0ken"


@pytest.fixture(scope="module", params=["compiled", "connexion"])
def mock(request: pytest.FixtureRequest) -> Iterator[RunningMock]:
    with start_mock(seed=3, pipeline=request.param) as running:
        yield running


@pytest.fixture(scope="module", params=["compiled", "connexion"])
def guarded(request: pytest.FixtureRequest) -> Iterator[RunningMock]:
    """The mock as it runs off loopback: its control API wants the token."""
    with start_mock(seed=3, pipeline=request.param, control_token=TOKEN) as running:
        yield running


def _clock(mock: RunningMock, *tokens: bytes) -> httpx.Response:
    headers = [(b"X-Mock-Control-Token", token) for token in tokens]
    return mock.client("control").get("/clock", headers=headers)


def test_the_control_token_opens_the_control_api(guarded: RunningMock) -> None:
    assert _clock(guarded, TOKEN.encode()).status_code == 200
    for refused in (_clock(guarded), _clock(guarded, b"wrong"), _clock(guarded, b"")):
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["status"] == 401


def test_a_token_beyond_ascii_is_refused_not_a_server_error(guarded: RunningMock) -> None:
    for token in ("tökén".encode("latin-1"), "t0ken€".encode(), b"\xff" * 5):
        refused = _clock(guarded, token)
        assert refused.status_code == 401, refused.text
        assert refused.json()["title"] == "Unauthorized"


def test_the_first_of_two_token_headers_wins(guarded: RunningMock) -> None:
    # Everywhere else the first header of a name counts (Starlette's Headers.get); so does the control token.
    assert _clock(guarded, TOKEN.encode(), b"wrong").status_code == 200
    assert _clock(guarded, b"wrong", TOKEN.encode()).status_code == 401


def test_head_checks_the_first_of_two_magicline_keys(mock: RunningMock) -> None:
    url = mock.urls["magicline"] + "/v1/customers/1001"
    http = mock.client()

    def head(*keys: bytes) -> int:
        return http.head(url, headers=[(b"X-API-KEY", key) for key in keys]).status_code

    # HEAD answers as GET does: the first key decides.
    assert head(b"demo-magicline-mission", b"wrong") == 200
    assert head(b"wrong", b"demo-magicline-mission") == 401
    get = http.get(url, headers=[(b"X-API-KEY", b"wrong"), (b"X-API-KEY", b"demo-magicline-mission")])
    assert get.status_code == 401


VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "middleware-test"}


# The tests below send their own Host header or read the address the connection came in on: over the socket.


def test_a_trailing_slash_redirect_stays_on_the_mock(mock: RunningMock) -> None:
    for host in ("evil.example", "evil.example:8443", "127.0.0.1:99999", "[::1"):
        answer = httpx.get(mock.base_url + "/seam/access_codes/?intercom_id=x", headers={"host": host})
        assert answer.status_code == 307
        assert answer.headers["location"] == "/seam/access_codes?intercom_id=x"
    answer = httpx.get(mock.base_url + "/vms/api/v1/wsurl/")
    assert answer.headers["location"] == "/vms/api/v1/wsurl"


@pytest.mark.parametrize("pipeline", ["compiled", "connexion"])
def test_behind_a_proxy_the_redirect_names_the_public_url(pipeline: str) -> None:
    with start_mock(seed=3, pipeline=pipeline, public_url="https://mock.example.com/door") as proxied:
        answer = httpx.get(proxied.base_url + "/_mock/clock/", headers={"host": "evil.example"})
    assert answer.headers["location"] == "https://mock.example.com/door/_mock/clock"


def test_a_host_no_url_can_carry_gives_way_to_the_socket_address(mock: RunningMock) -> None:
    port = int(mock.base_url.rsplit(":", 1)[1])
    for host in ("127.0.0.1:99999", "127.0.0.1:abc", "[::1", "", "a b"):
        answer = httpx.get(mock.urls["vms"] + "/api/v1/wsurl", headers={**VMS, "host": host})
        assert answer.status_code == 200, (host, answer.text)
        assert answer.json()["ws_url"] == f"ws://127.0.0.1:{port}/vms/ws"
        assert answer.json()["port"] == port
    # A usable Host is the one clients reached the mock by, and links keep it.
    answer = httpx.get(mock.urls["vms"] + "/api/v1/wsurl", headers={**VMS, "host": "[::1]:8443"})
    assert answer.json()["ws_url"] == "ws://[::1]:8443/vms/ws"
    page = httpx.get(mock.urls["vms"] + "/api/v1/intercom/codes", headers={**VMS, "host": "doors.test"})
    assert page.json()["links"]["first"] == "http://doors.test/vms/api/v1/intercom/codes?page=1"
