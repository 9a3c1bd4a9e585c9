"""`conformance proxy`: an application's own traffic, forwarded unchanged and held to the contract; the client's
and the server's violations told apart; a HAR recording without a secret; a building made from it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import mockserver.testing as mock_testing
from conformance.proxy_run import start_proxy
from mockserver.har_fixtures import fixtures_from_har
from tests.conformance import planted

VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "proxy-test"}
SECRETS = ("alice-password", "demo-vms-alice", "demo-seam-alice", "demo-magicline-mission", "seamsecret")


@pytest.fixture
def mock() -> Iterator[mock_testing.RunningMock]:
    with mock_testing.start_mock(seed=0) as running:
        yield running


def vms_session(client: httpx.Client) -> dict[str, Any]:
    """What an app does with VMS: log in, create a code, list, delete it."""
    login = client.post(
        "/api/v1/token",
        json={"login": "alice@demo.test", "password": "alice-password"},
        headers={"X-Client": "web", "X-UUID": "proxy-test"},
    )
    assert login.status_code == 200
    created = client.post(
        "/api/v1/intercom/180/codes", headers=VMS, json={"title": "Courier", "expired_at": "2031-01-01 10:00"}
    )
    assert created.status_code == 200
    assert client.get("/api/v1/intercom/codes", headers=VMS, params={"per_page": 10}).status_code == 200
    return created.json()


def test_conforming_traffic_passes_unchanged_with_no_violation(mock: mock_testing.RunningMock) -> None:
    direct = httpx.get(mock.urls["vms"] + "/api/v1/intercom/codes", headers=VMS)
    with start_proxy("vms", mock.urls["vms"]) as proxy, httpx.Client(base_url=proxy.base_url) as client:
        code = vms_session(client)
        through = client.get("/api/v1/intercom/codes", headers=VMS)
        gone = client.request("DELETE", "/api/v1/intercom/codes", headers=VMS, json={"ids": [code["id"]]})
        assert gone.status_code == 204 and gone.content == b""
    report = proxy.report()
    assert report["exchanges"] == 5
    assert report["server_violations"] == [] and report["client_violations"] == []
    assert through.status_code == direct.status_code and through.headers["date"]
    assert [c["id"] for c in through.json()["data"]][1:] == [c["id"] for c in direct.json()["data"]]
    assert len(proxy.lines) == 5 and all(line.endswith("✓") for line in proxy.lines)


def test_a_request_missing_a_documented_header_is_the_clients_violation(mock: mock_testing.RunningMock) -> None:
    with start_proxy("vms", mock.urls["vms"]) as proxy:
        answer = httpx.get(proxy.base_url + "/api/v1/intercom/codes", headers={"Authorization": VMS["Authorization"]})
        assert answer.status_code == 422  # the server's documented answer, forwarded as it is
        httpx.get(proxy.base_url + "/api/v1/intercom/codes", headers={**VMS, "hl": "x" * 40})
    report = proxy.report()
    assert {v["what"].split(":")[0] for v in report["client_violations"]} >= {"header X-Client (required)"}
    assert report["server_violations"] == []
    # A length the documents never give is only the mock's: a note, not the client's fault.
    assert any("hl" in note["what"] for note in report["notes"])
    assert all("***" in v["curl"] or "authorization" not in v["curl"] for v in report["client_violations"])


class _IsoDates(planted.Bug):
    """Codes carry ISO 8601 dates where VMS documents `Y-m-d H:i:s`."""

    api = "vms"

    def response(self, req: planted.Req, resp: planted.Resp) -> None:
        body = resp.json()
        if isinstance(body, dict) and "expired_at" in body:
            body["expired_at"] = body["expired_at"].replace(" ", "T") + "Z"
            resp.set_json(body)


class _UndeclaredStatus(planted.Bug):
    """The code list answers 418."""

    api = "vms"

    def response(self, req: planted.Req, resp: planted.Resp) -> None:
        if req.route == "/api/v1/intercom/codes" and req.method == "GET":
            resp.status = 418


@pytest.mark.parametrize(
    ("bug", "check"),
    [
        (planted.VmsWillDeletedAt(), "vms_will_deleted_at"),
        (_IsoDates(), "response_schema_conformance"),
        (_UndeclaredStatus(), "status_code_conformance"),
        (planted.VmsErrorBody(), "vms_error_body"),
    ],
    ids=["will_deleted_at", "iso_dates", "undeclared_status", "error_body"],
)
def test_a_broken_answer_is_the_servers_violation(bug: planted.Bug, check: str) -> None:
    with (
        mock_testing.start_mock(seed=0, wrap=planted.wrap(bug)) as mock,
        start_proxy("vms", mock.urls["vms"]) as proxy,
        httpx.Client(base_url=proxy.base_url) as client,
    ):
        client.post(
            "/api/v1/intercom/180/codes", headers=VMS, json={"title": "Courier", "expired_at": "2031-01-01 10:00"}
        )
        client.get("/api/v1/intercom/codes", headers=VMS)
        client.post("/api/v1/intercom/999/codes", headers=VMS, json={"title": "x", "expired_at": "2031-01-01 10:00"})
    report = proxy.report()
    assert check in {v["check"] for v in report["server_violations"]}, report
    assert report["client_violations"] == []


def test_the_recording_holds_no_secret_and_makes_a_building_that_lists_the_same_codes(
    mock: mock_testing.RunningMock, tmp_path: Path
) -> None:
    with start_proxy("vms", mock.urls["vms"], record=True) as proxy, httpx.Client(base_url=proxy.base_url) as client:
        created = vms_session(client)
        listed = client.get("/api/v1/intercom/codes", headers=VMS, params={"per_page": 100}).json()["data"]
    from conformance.har import har_document

    har = har_document(proxy.recorder.exchanges, "vms")
    text = json.dumps(har)
    assert not [secret for secret in SECRETS if secret in text]
    assert har["log"]["version"] == "1.2" and len(har["log"]["entries"]) == 4
    assert created["code"] in text  # a door code is the recording's business, not a credential
    fixture = tmp_path / "building.yaml"
    fixture.write_text(yaml.safe_dump(fixtures_from_har(har)))
    with mock_testing.start_mock(seed=1, fixtures=str(fixture), start=mock.clock.now()) as rebuilt:
        headers = {**VMS, "Authorization": "Bearer har-vms-13"}
        again = httpx.get(rebuilt.urls["vms"] + "/api/v1/intercom/codes", headers=headers, params={"per_page": 100})
    assert again.status_code == 200
    keep = ("id", "title", "code", "expired_at", "will_deleted_at")
    assert sorted(tuple(c[k] for k in keep) for c in again.json()["data"]) == sorted(
        tuple(c[k] for k in keep) for c in listed
    )


def test_oauth_and_key_secrets_stay_out_of_the_recording(mock: mock_testing.RunningMock) -> None:
    redirect = "https://connect.integrations.getseam.com/callback"
    with start_proxy("seam", mock.urls["seam"], record=True) as proxy, httpx.Client(base_url=proxy.base_url) as client:
        signed_in = client.post(
            "/authorize", data={"email": "alice@demo.test", "password": "alice-password", "redirect_uri": redirect}
        )
        code = httpx.URL(signed_in.headers["location"]).params["code"]
        token = client.post("/oauth/token", json={"code": code, "client_id": "seam", "client_secret": "seamsecret"})
        assert token.status_code == 200
        client.get("/door_locks", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    from conformance.har import har_document

    text = json.dumps(har_document(proxy.recorder.exchanges, "seam"))
    for secret in (*SECRETS, code, token.json()["access_token"]):
        assert secret not in text, secret


def test_the_command_reports_on_sigterm_and_exits_1_on_a_server_violation(tmp_path: Path) -> None:
    with mock_testing.start_mock(seed=0, wrap=planted.wrap(planted.VmsWillDeletedAt())) as mock:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        report, junit = tmp_path / "report.json", tmp_path / "proxy.xml"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "conformance",
                "proxy",
                "--api",
                "vms",
                "--upstream",
                mock.urls["vms"],
                "--port",
                str(port),
                "--report",
                str(report),
                "--junit",
                str(junit),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/api/v1/wsurl", headers=VMS)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, process.communicate()
                time.sleep(0.1)
        httpx.post(
            base + "/api/v1/intercom/180/codes", headers=VMS, json={"title": "a", "expired_at": "2031-01-01 10:00"}
        )
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 1, out + err
    assert "POST /api/v1/intercom/180/codes 200" in out and "✗ server: vms_will_deleted_at" in out
    document = json.loads(report.read_text())
    assert document["exchanges"] == 2 and document["server_violations"][0]["check"] == "vms_will_deleted_at"
    assert "<failure" in junit.read_text()
