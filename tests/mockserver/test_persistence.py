"""Nothing is lost: with a state file, acknowledged writes survive a restart and a kill -9, clock included."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from mockserver.testing import start_mock

START = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)
VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "persist"}
MAGICLINE = {"X-API-KEY": "demo-magicline-mission"}


def _codes(base: str) -> list[dict]:
    return httpx.get(f"{base}/api/v1/intercom/codes", params={"per_page": 100}, headers=VMS).json()["data"]


def test_state_file_survives_a_restart_and_keeps_the_clock(tmp_path: Path) -> None:
    state = tmp_path / "building.db"
    with start_mock(state_path=state, start=START, frozen=True) as first:
        created = httpx.post(
            first.urls["vms"] + "/api/v1/intercom/180/codes",
            headers=VMS,
            json={"title": "Kept", "expired_at": "2031-06-01 00:00"},
        ).json()
        fixture_code = next(c for c in _codes(first.urls["vms"]) if c["title"] == "Visitor 1")
        assert (
            httpx.request(
                "DELETE", first.urls["vms"] + "/api/v1/intercom/codes", headers=VMS, json={"ids": [fixture_code["id"]]}
            ).status_code
            == 204
        )
        medium = httpx.post(
            first.urls["magicline"] + "/v1/customers/1003/access-mediums",
            headers=MAGICLINE,
            json={"type": "BARCODE", "value": "persisted-1"},
        ).json()
        first.clock.advance(hours=5)
        moved_to = first.clock.now()

    # Other fixtures and seed: an existing state file loads as it is and fixtures are not applied again.
    with start_mock(state_path=state, seed=99, start=datetime(2040, 1, 1, tzinfo=UTC)) as second:
        assert second.clock.now() == moved_to and second.clock.frozen
        titles = [c["title"] for c in _codes(second.urls["vms"])]
        assert "Kept" in titles and "Visitor 1" not in titles
        kept = next(c for c in _codes(second.urls["vms"]) if c["title"] == "Kept")
        assert kept == {**created, "intercom": kept["intercom"]}
        customer = httpx.get(second.urls["magicline"] + "/v1/customers/1003", headers=MAGICLINE).json()
        assert medium in customer["accessMediums"]
        # Ids keep counting where they were, so nothing is handed out twice.
        again = httpx.post(
            second.urls["vms"] + "/api/v1/intercom/180/codes",
            headers=VMS,
            json={"title": "Next", "expired_at": "2031-06-01 00:00"},
        ).json()
        assert again["id"] > created["id"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(state: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mockserver.cli",
            "run",
            "--port",
            str(port),
            "--state",
            str(state),
            "--frozen-clock",
            "--clock",
            "2031-05-01T12:00:00Z",
            "--journal-size",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/seam/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            if process.poll() is not None:
                raise AssertionError(process.stdout.read() if process.stdout else "the mock exited") from None
            time.sleep(0.05)
    process.kill()
    raise AssertionError("the mock did not start")


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    state = tmp_path / "building.db"
    port = _free_port()
    process = _serve(state, port)
    base = f"http://127.0.0.1:{port}/vms"
    acknowledged = []
    try:
        with httpx.Client(base_url=base, headers=VMS) as client:
            for number in range(40):
                response = client.post(
                    "/api/v1/intercom/181/codes", json={"title": f"ack-{number}", "expired_at": "2031-07-01 00:00"}
                )
                assert response.status_code == 200
                acknowledged.append(response.json()["id"])
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()

    process = _serve(state, port)
    try:
        listed = {c["id"] for c in _codes(base)}
        assert set(acknowledged) <= listed
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def test_a_stopped_mock_leaves_everything_in_the_state_file_itself(tmp_path: Path) -> None:
    # Stopped with SIGTERM (Ctrl+C, a container stop), the write-ahead log is folded into the file: copying the
    # file alone, as a backup or a CI artefact, copies the whole building.
    state = tmp_path / "building.db"
    port = _free_port()
    process = _serve(state, port)
    base = f"http://127.0.0.1:{port}/vms"
    try:
        with httpx.Client(base_url=base, headers=VMS) as client:
            created = client.post(
                "/api/v1/intercom/181/codes", json={"title": "in the file", "expired_at": "2031-07-01 00:00"}
            )
            assert created.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()
    assert not Path(f"{state}-wal").exists() or Path(f"{state}-wal").stat().st_size == 0
    copy = tmp_path / "copy" / "building.db"
    copy.parent.mkdir()
    copy.write_bytes(state.read_bytes())
    with start_mock(state_path=copy) as restored:
        assert created.json()["id"] in {c["id"] for c in _codes(restored.urls["vms"])}
