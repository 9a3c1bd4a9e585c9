"""`mockserver run` as a user starts it: the banner, subsets of APIs, the control token off loopback, the public
URL behind a proxy, CORS, and the credentials endpoint for scripts."""

from __future__ import annotations

import importlib.metadata
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import click
import httpx
import pytest
from click.testing import CliRunner

from mockserver.app import DEMO_FIXTURES as DEMO
from mockserver.cli import main
from mockserver.testing import start_mock

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


def _run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), terminal_width=80)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args} raised instead of saying what is wrong") from result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--port", "80000"), "'--port': 80000 is not in the range"),
        (("--clock", "notadate"), "'notadate' is not an ISO 8601 time"),
        (("--magicline-rate-limit", "-5"), "'--magicline-rate-limit': -5 is not in the range"),
        (("--wsurl-rate-limit", "0"), "'--wsurl-rate-limit': 0 is not in the range"),
        (("--journal-size", "-1"), "'--journal-size': -1 is not in the range"),
    ],
)
def test_a_bad_option_value_is_a_one_line_error_and_exit_2(args: tuple[str, ...], said: str) -> None:
    with socket.socket() as held:
        # Were the value accepted, the mock would stop at this busy port rather than serve in the test's process.
        held.bind(("127.0.0.1", 0))
        held.listen()
        status, output = _run_cli("run", "--port", str(held.getsockname()[1]), *args)
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert status == 2 and len(errors) == 1 and said in errors[0], output


def _state_in_a_place_without_room(tmp_path) -> str:
    (tmp_path / "a-file").write_text("")
    return str(tmp_path / "a-file" / "state.db")


@pytest.mark.parametrize(
    ("setup", "said"),
    [
        (lambda tmp: ["--state", _write(tmp / "notes.txt", "not a database")], "is not a database"),
        (lambda tmp: ["--state", _state_in_a_place_without_room(tmp)], "unable to open database file"),
        (
            lambda tmp: ["--fixtures", _write(tmp / "typo.yaml", DEMO.read_text().replace("title: House", "titel: X"))],
            "intercom 180: unknown field 'titel'",
        ),
        (
            lambda tmp: [
                "--fixtures",
                _write(tmp / "bad-uuid.yaml", DEMO.read_text().replace("uuid: 3043fde0-", "uuid: x3043fde0-")),
            ],
            "is not a UUID",
        ),
    ],
)
def test_a_bad_state_or_fixtures_file_is_a_one_line_error_and_exit_2(tmp_path, setup, said: str) -> None:
    # In a process of its own: were the file accepted, the mock would serve until the timeout.
    result = subprocess.run(
        [sys.executable, "-m", "mockserver", "run", "--port", str(_free_port()), *setup(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: cannot start: "), result.stderr
    assert said in result.stderr, result.stderr


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_a_busy_port_is_said_before_any_banner() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, output = _run_cli("run", "--port", str(port))
    assert status == 2, output
    assert output == f"Error: port {port} on 127.0.0.1 is in use; choose another with --port\n"


def test_port_0_listens_on_a_free_port_and_says_which() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "run", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    try:
        banner = []
        for line in process.stdout:
            banner.append(line)
            if line.startswith("Listening on"):
                break
        port = re.search(r"Listening on http://127\.0\.0\.1:(\d+) ", banner[-1])
        assert port and port.group(1) != "0", banner
        assert f"http://127.0.0.1:{port.group(1)}/seam/docs/" in "".join(banner)
        assert httpx.get(f"http://127.0.0.1:{port.group(1)}/seam/health").json() == {"ok": True}
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_ctrl_c_stops_the_mock_quietly_with_exit_0() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "run", "--port", str(_free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Listening on"):
            break
    process.send_signal(signal.SIGINT)
    after = process.stdout.read()
    process.stdout.close()
    assert process.wait(timeout=10) == 0
    assert after == ""


def test_version() -> None:
    status, output = _run_cli("--version")
    assert status == 0 and output == f"mockserver {importlib.metadata.version('doorcodes-contracts')}\n"


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_help_is_whole_sentences_and_every_option_says_what_it_does() -> None:
    for path, command in _commands(main):
        status, output = _run_cli(*path, "--help")
        assert status == 0, output
        # click shortens a summary that does not fit an 80-column listing with "..."
        listing = output.split("Commands:", 1)[1] if "Commands:" in output else ""
        assert "..." not in listing, output
        for param in command.params:
            if isinstance(param, click.Option) and param.name not in ("help", "version"):
                assert param.help, f"{' '.join(path)} {param.opts[0]} has no help"
    _, run_help = _run_cli("run", "--help")
    assert "--state FILE|REDIS_URL" in run_help


def test_device_events_says_when_there_are_none() -> None:
    with start_mock() as mock:
        status, output = _run_cli("device", "--url", mock.base_url, "events", "190")
        assert status == 0 and output == "No events on intercom 190 yet.\n"
        status, output = _run_cli("device", "--url", mock.base_url, "keypad", "190", "2345")
        assert status == 0 and output.startswith("GRANTED"), output
        status, output = _run_cli("device", "--url", mock.base_url, "events", "190")
        assert status == 0 and "No events" not in output and len(output.splitlines()) >= 1, output


def test_device_commands_say_when_the_mock_cannot_be_reached() -> None:
    status, output = _run_cli("device", "--url", f"http://127.0.0.1:{_free_port()}", "show", "180")
    assert status == 2 and output.startswith("Error: cannot reach the mock at "), output


def test_the_listening_socket_names_tcp_so_answers_are_not_held_back() -> None:
    # asyncio sets TCP_NODELAY on an accepted connection only when the listening socket's proto says TCP; left 0,
    # every answer waited ~40 ms for the client's delayed ACK (bench: ~700 requests a second instead of ~6,000).
    from mockserver.cli import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
