"""`mockserver run` as a user starts it: the banner, subsets of APIs, the control token off loopback, the public
URL behind a proxy, CORS, and the credentials endpoint for scripts."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import httpx

CONTROL_HEADER = "X-Mock-Control-Token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(*args: str) -> Iterator[tuple[int, str]]:
    """Run `mockserver run ARGS` on a free port; yield the port and what it printed before listening."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver.cli", "run", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    banner = []
    try:
        for line in process.stdout:
            banner.append(line)
            if line.startswith("Listening on"):
                break
        else:
            raise AssertionError("the mock exited:\n" + "".join(banner))
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/seam/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the mock did not answer"
                time.sleep(0.05)
        yield port, "".join(banner)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_run_prints_urls_docs_and_demo_credentials() -> None:
    with serving() as (port, banner):
        base = f"http://127.0.0.1:{port}"
        for api in ("magicline", "seam", "vms"):
            assert f"{base}/{api}" in banner and f"{base}/{api}/docs/" in banner
        assert "X-API-KEY: demo-magicline-mission" in banner
        assert "Bearer demo-seam-alice" in banner and "Bearer demo-vms-bob" in banner
        credentials = httpx.get(f"{base}/_mock/credentials").json()
        assert credentials["base_urls"]["vms"] == f"{base}/vms"
        assert credentials["vms"][0]["access_token"] == "Bearer demo-vms-alice"
        assert httpx.get(f"{base}/vms/docs/").status_code == 200
        assert "openapi" in httpx.get(f"{base}/vms/openapi.json").json()


def test_the_event_loop_is_asyncio_unless_uvloop_is_asked_for() -> None:
    # The line comes from the running server, naming the loop it runs on.
    for args, loop in (((), "asyncio"), (("--loop", "uvloop"), "uvloop")):
        with serving(*args) as (port, banner):
            assert f"Listening on http://127.0.0.1:{port} ({loop} event loop;" in banner
            answer = httpx.get(
                f"http://127.0.0.1:{port}/vms/api/v1/intercom/codes",
                headers={"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "t"},
            )
            assert answer.status_code == 200 and answer.json()["meta"]["current_page"] == 1


def test_api_subset_serves_only_what_was_asked() -> None:
    with serving("--api", "seam") as (port, banner):
        base = f"http://127.0.0.1:{port}"
        assert "magicline" not in banner.split("Demo credentials")[0]
        assert httpx.get(f"{base}/seam/health").json() == {"ok": True}
        assert httpx.get(f"{base}/magicline/v1/customers", headers={"X-API-KEY": "x"}).status_code == 404
        assert set(httpx.get(f"{base}/_mock/credentials").json()["base_urls"]) == {"seam", "control"}


def test_off_loopback_the_control_api_needs_its_token() -> None:
    with serving("--host", "0.0.0.0") as (port, banner):
        match = re.search(r"X-Mock-Control-Token: (\S+)", banner)
        assert match, banner
        base = f"http://127.0.0.1:{port}/_mock"
        refused = httpx.get(f"{base}/clock")
        assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
        assert httpx.get(f"{base}/clock", headers={CONTROL_HEADER: "wrong"}).status_code == 401
        assert httpx.get(f"{base}/clock", headers={CONTROL_HEADER: match.group(1)}).status_code == 200
        # The vendor APIs keep their own auth only.
        assert httpx.get(f"http://127.0.0.1:{port}/seam/health").status_code == 200


def test_public_url_shapes_paginator_links_and_ws_url() -> None:
    with serving("--public-url", "https://mock.example.com/door", "--control-token", "t0k3n") as (port, banner):
        assert "https://mock.example.com/door/vms" in banner
        headers = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "cli"}
        page = httpx.get(f"http://127.0.0.1:{port}/vms/api/v1/intercom/codes", headers=headers).json()
        assert page["meta"]["path"] == "https://mock.example.com/door/vms/api/v1/intercom/codes"
        assert page["links"]["first"] == "https://mock.example.com/door/vms/api/v1/intercom/codes?page=1"
        ws = httpx.get(f"http://127.0.0.1:{port}/vms/api/v1/wsurl", headers=headers).json()
        assert ws == {
            "ws_url": "wss://mock.example.com/door/vms/ws",
            "app_key": ws["app_key"],
            "port": 443,
            "host": "mock.example.com",
            "path": "/door/vms/ws",
            "is_encrypted": True,
        }


def test_cors_preflight_and_simple_requests() -> None:
    with serving() as (port, _):
        base = f"http://127.0.0.1:{port}"
        preflight = httpx.options(
            f"{base}/vms/api/v1/intercom/codes",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, x-client, x-uuid, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] in ("*", "https://app.example.com")
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "x-client" in preflight.headers["access-control-allow-headers"].lower()
        simple = httpx.get(f"{base}/seam/health", headers={"Origin": "https://app.example.com"})
        assert simple.headers["access-control-allow-origin"] == "*"
        assert "date" in simple.headers["access-control-expose-headers"].lower()


def test_bad_fixtures_fail_fast_with_a_message(tmp_path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("owners:\n  - id: 1\n    login: a\n    password: b\nbuildings: []\n")
    result = subprocess.run(
        [sys.executable, "-m", "mockserver.cli", "run", "--port", str(_free_port()), "--fixtures", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "unknown sections" in result.stderr + result.stdout


def test_an_unreachable_redis_state_fails_fast_with_a_message() -> None:
    # Port 1 on loopback has nothing listening: the replica must say so, not print a traceback.
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "run", "--port", str(_free_port()), "--state", "redis://127.0.0.1:1/0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    output = result.stderr + result.stdout
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in output
    assert "Traceback" not in output


def test_reset_puts_the_clock_back_where_the_command_started_it() -> None:
    with serving("--clock", "2030-01-01T08:00:00Z", "--frozen-clock") as (port, _):
        control = httpx.Client(base_url=f"http://127.0.0.1:{port}/_mock")
        control.post("/clock/advance", json={"seconds": 86400}).raise_for_status()
        assert control.post("/reset").status_code == 204
        assert control.get("/clock").json() == {"now": "2030-01-01T08:00:00+00:00", "frozen": True}
    with serving() as (port, _):
        control = httpx.Client(base_url=f"http://127.0.0.1:{port}/_mock")
        control.post("/clock/advance", json={"seconds": 86400}).raise_for_status()
        assert control.post("/reset").status_code == 204
        clock = control.get("/clock").json()
        # Started without --clock, the clock ran with real time; after a reset it does again.
        assert abs(datetime.fromisoformat(clock["now"]).timestamp() - time.time()) < 60 and not clock["frozen"]
