"""VMS pushes reach a real pusher-js client, found and authorised the way a VMS app does it; the device that
made a change does not get its own push; door events follow the simulated clock."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mockserver.testing import RunningMock, start_mock
from tests.node_tools import JS_DIR, ensure_node_tools, needs_node

VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "phone-of-alice"}
EVENT = "App\\Events\\UserPush"
TIMEOUT = 20.0


class Client:
    """The node script's JSON lines, read on a thread so the test can wait on them with a timeout."""

    def __init__(self, command: list[str], log: Path) -> None:
        with log.open("w") as stderr:
            self.process = subprocess.Popen(command, cwd=JS_DIR, stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self) -> dict[str, Any]:
        line = self.lines.get(timeout=TIMEOUT)
        assert line is not None, "pusher-js exited early"
        assert line["type"] not in ("timeout", "error", "subscription_error"), line
        return line

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()


@pytest.fixture
def mock() -> Iterator[RunningMock]:
    with start_mock(seed=4) as running:
        yield running


@needs_node
def test_pusher_js_gets_code_and_door_pushes_but_not_its_own(mock: RunningMock, tmp_path: Path) -> None:
    ensure_node_tools("pusher-js/package.json")
    vms = httpx.Client(base_url=mock.urls["vms"], headers=VMS)
    where = vms.get("/api/v1/wsurl").json()
    assert where["ws_url"] == f"ws://{where['host']}:{where['port']}{where['path']}"
    client = Client(
        [
            "node",
            "vms_client.mjs",
            "--host",
            where["host"],
            "--port",
            str(where["port"]),
            "--path",
            where["path"],
            "--key",
            where["app_key"],
            "--auth-url",
            mock.urls["vms"] + "/api/v1/broadcasting/auth",
            "--token",
            VMS["Authorization"],
            "--channel",
            "private-user.13",
            "--events",
            "4",
            "--timeout-ms",
            str(int(TIMEOUT * 1000)),
        ],
        tmp_path / "pusher-js.log",
    )
    try:
        socket_id = client.next()["socket_id"]
        assert client.next() == {"type": "subscribed", "channel": "private-user.13"}

        body = {"expired_at": "2099-01-01 00:00"}
        from_elsewhere = vms.post(
            "/api/v1/intercom/180/codes", json={**body, "title": "pushed"}, headers={"X-Socket-ID": "1.1"}
        ).json()
        own = vms.post(
            "/api/v1/intercom/180/codes", json={**body, "title": "not pushed back"}, headers={"X-Socket-ID": socket_id}
        ).json()
        stored = client.next()
        assert stored["event"] == EVENT
        assert stored["data"] == {"type": "intercom.code.store", "intercom_code": from_elsewhere}

        assert (
            vms.request("DELETE", "/api/v1/intercom/codes", json={"ids": [from_elsewhere["id"], own["id"]]}).status_code
            == 204
        )
        deleted = client.next()
        assert deleted["data"] == {"type": "intercom.code.delete", "deleted_ids": [from_elsewhere["id"], own["id"]]}

        assert vms.post("/api/v1/intercom/180/open-door").status_code == 204
        unlocked = client.next()["data"]
        assert unlocked["type"] == "intercom.door.unlocked" and unlocked["intercom_id"] == 180
        mock.clock.advance(seconds=6)  # past the door's unlock time: it relocks, on the simulated clock
        locked = client.next()["data"]
        assert locked == {"type": "intercom.door.locked", "intercom_id": 180, "at": unlocked["until"]}
        assert client.next() == {"type": "done"}
    finally:
        client.stop()


@needs_node
def test_another_users_channel_is_refused(mock: RunningMock, tmp_path: Path) -> None:
    ensure_node_tools("pusher-js/package.json")
    where = httpx.get(mock.urls["vms"] + "/api/v1/wsurl", headers=VMS).json()
    client = Client(
        [
            "node",
            "vms_client.mjs",
            "--host",
            where["host"],
            "--port",
            str(where["port"]),
            "--path",
            where["path"],
            "--key",
            where["app_key"],
            "--auth-url",
            mock.urls["vms"] + "/api/v1/broadcasting/auth",
            "--token",
            VMS["Authorization"],
            "--channel",
            "private-user.14",
            "--timeout-ms",
            str(int(TIMEOUT * 1000)),
        ],
        tmp_path / "pusher-js.log",
    )
    try:
        assert client.next()["type"] == "connected"
        refused = client.lines.get(timeout=TIMEOUT)
        assert refused is not None and refused["type"] == "subscription_error"
        assert refused["error"]["status"] == 403
    finally:
        client.stop()
