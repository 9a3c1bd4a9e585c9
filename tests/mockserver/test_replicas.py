"""Two mock replicas, two processes on two ports, sharing one building in a real Redis server."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.mockserver.store.test_store_contract import REDIS_URL, needs_redis
from tests.mockserver.test_vms_pusher_js import EVENT, TIMEOUT, Client
from tests.node_tools import ensure_node_tools, needs_node

pytestmark = needs_redis

ROOT = Path(__file__).resolve().parents[2]
START = "2030-01-01T08:00:00+00:00"
ALICE = {"X-Client": "web", "X-UUID": "replica-tests"}
WSURL_LIMIT = 4


@dataclass
class Replica:
    base: str
    process: subprocess.Popen[bytes]

    def client(self, api: str, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=f"{self.base}/{api}", headers=headers, timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(state: str, log: Path, env: dict[str, str] | None = None) -> Replica:
    port = _free_port()
    command = [sys.executable, "-m", "mockserver", "run", "--port", str(port), "--state", state]
    command += ["--clock", START, "--frozen-clock", "--wsurl-rate-limit", str(WSURL_LIMIT)]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(base + "/seam/health", timeout=1).status_code == 200:
                return Replica(base, process)
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError(f"replica did not start: {log.read_text()}")


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    namespace = f"test-replicas-{uuid.uuid4().hex}"
    state = f"{REDIS_URL}?namespace={namespace}"
    started: list[Replica] = []
    try:
        started.append(_start(state, tmp_path / "a.log"))  # fills the empty building with the demo fixtures
        started.append(_start(state, tmp_path / "b.log"))  # finds it filled and uses it as it is
        yield started[0], started[1]
    finally:
        for replica in started:
            os.killpg(replica.process.pid, signal.SIGTERM)
            replica.process.wait(timeout=10)
        from mockserver.store.redis_store import RedisStore

        store = RedisStore(REDIS_URL, namespace=namespace)
        store.clear()
        store.close()


def _login(replica: Replica) -> httpx.Client:
    vms = replica.client("vms", **ALICE)
    answer = vms.post("/api/v1/token", json={"login": "alice@demo.test", "password": "alice-password"})
    assert answer.status_code == 200, answer.text
    vms.headers["Authorization"] = answer.json()["access_token"]
    return vms


def test_a_building_shared_by_two_replicas(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    vms_a = _login(a)
    vms_b = b.client("vms", **ALICE, Authorization=vms_a.headers["Authorization"])  # a token from A works on B
    seam_b = b.client("seam", Authorization="Bearer demo-seam-alice")

    created = vms_a.post("/api/v1/intercom/180/codes", json={"title": "Shared", "expired_at": "2030-01-01 09:00"})
    assert created.status_code == 200, created.text
    code = created.json()
    listed = vms_b.get("/api/v1/intercom/codes", params={"per_page": 100}).json()["data"]
    assert code in listed
    seam_codes = seam_b.get("/access_codes", params={"intercom_id": "3043fde0-3c6d-4913-981f-2607f05fe74e"}).json()
    assert code["code"] in [c["code"] for c in seam_codes["access_codes"]]

    # The clock moved through B's control API holds on A.
    assert httpx.post(f"{b.base}/_mock/clock/advance", json={"seconds": 2 * 3600}).status_code == 200
    on_a = {c["id"]: c for c in vms_a.get("/api/v1/intercom/codes", params={"per_page": 100}).json()["data"]}
    assert on_a[code["id"]]["is_expired"] is True
    assert httpx.get(f"{a.base}/_mock/clock").json()["now"].startswith("2030-01-01T10:00")
    httpx.post(f"{b.base}/_mock/clock/advance", json={"seconds": 24 * 3600}).raise_for_status()
    assert code["id"] not in [c["id"] for c in vms_a.get("/api/v1/intercom/codes").json()["data"]]

    # A fault set through A's control API answers on B.
    fault = {"api": "seam", "operation_id": "listIntercoms", "status": 401, "count": 1}
    assert httpx.post(f"{a.base}/_mock/faults", json=fault).status_code == 201
    assert seam_b.get("/door_locks").status_code == 401
    assert seam_b.get("/door_locks").status_code == 200  # count 1: spent on B, gone on A too
    assert httpx.get(f"{a.base}/_mock/faults").json() == {"faults": []}


def test_concurrent_creates_through_both_replicas_are_unique_and_all_kept(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    token = _login(a).headers["Authorization"]
    per_replica = 30

    def create(replica: Replica, n: int) -> dict:
        with replica.client("vms", **ALICE, Authorization=token) as vms:
            answer = vms.post(
                "/api/v1/intercom/181/codes", json={"title": f"burst {n}", "expired_at": "2030-02-01 00:00"}
            )
            assert answer.status_code == 200, answer.text
            return answer.json()

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        jobs = [pool.submit(create, replica, n) for n in range(per_replica) for replica in (a, b)]
        created = [job.result() for job in jobs]
    ids = [c["id"] for c in created]
    digits = [c["code"] for c in created]
    assert len(set(ids)) == len(ids) == 2 * per_replica
    assert len(set(digits)) == len(digits), "two replicas handed out the same code on one intercom"
    with b.client("vms", **ALICE, Authorization=token) as vms:
        pages = vms.get("/api/v1/intercom/codes", params={"per_page": 100}).json()
    on_181 = {c["id"] for c in pages["data"] if c["intercom"]["id"] == 181}
    assert set(ids) <= on_181, "a write acknowledged by one replica is missing on the other"


@needs_node
def test_a_push_caused_on_one_replica_reaches_pusher_js_on_the_other(
    replicas: tuple[Replica, Replica], tmp_path: Path
) -> None:
    ensure_node_tools("pusher-js/package.json")
    a, b = replicas
    vms_a = _login(a)
    vms_b = b.client("vms", **ALICE, Authorization=vms_a.headers["Authorization"])
    where = vms_b.get("/api/v1/wsurl").json()
    client = Client(
        [
            "node",
            "vms_client.mjs",
            *("--host", where["host"], "--port", str(where["port"]), "--path", where["path"]),
            *("--key", where["app_key"], "--auth-url", f"{b.base}/vms/api/v1/broadcasting/auth"),
            *("--token", vms_a.headers["Authorization"], "--channel", "private-user.13"),
            *("--events", "1", "--timeout-ms", str(int(TIMEOUT * 1000))),
        ],
        tmp_path / "pusher-js.log",
    )
    try:
        socket_id = client.next()["socket_id"]
        assert client.next() == {"type": "subscribed", "channel": "private-user.13"}
        body = {"expired_at": "2030-02-01 00:00"}
        # Made by the listening socket itself (its id sent to A): not pushed back, across replicas too.
        own = vms_a.post(
            "/api/v1/intercom/180/codes", json={**body, "title": "own"}, headers={"X-Socket-ID": socket_id}
        )
        assert own.status_code == 200
        other = vms_a.post("/api/v1/intercom/180/codes", json={**body, "title": "other"}).json()
        pushed = client.next()
        assert pushed["event"] == EVENT
        assert pushed["data"] == {"type": "intercom.code.store", "intercom_code": other}
        assert client.next() == {"type": "done"}
    finally:
        client.stop()


def test_the_journal_and_the_rate_limits_are_shared(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    httpx.delete(f"{a.base}/_mock/journal").raise_for_status()
    device = {"X-Client": "web", "X-UUID": "one-phone"}
    answers = []
    for n in range(WSURL_LIMIT + 1):
        with (a if n % 2 else b).client("vms", **device) as vms:
            answers.append(vms.get("/api/v1/wsurl").status_code)
    # One device's calls count against one limit, whichever replica they reach.
    assert answers == [200] * WSURL_LIMIT + [429]
    journal = httpx.get(f"{b.base}/_mock/journal", params={"operation_id": "getWsUrl"}).json()["entries"]
    assert [entry["status"] for entry in journal] == answers
    assert len({entry["id"] for entry in journal}) == len(answers)


def _check_whole(snapshot: dict) -> dict[int, dict]:
    """Every code has its uuid, its digits and its keypad entry (or, on an offline intercom, a queued change), and
    no intercom holds the same digits twice; answers the codes by id."""
    records: dict[str, dict[str, dict]] = {}
    for record in snapshot["state"]["records"]:
        records.setdefault(record["kind"], {})[record["key"]] = record["data"]
    codes = {int(key): data for key, data in records.get("code", {}).items()}
    queued = {item["code"]["id"] for item in records.get("sync", {}).values() if item["op"] == "add"}
    for code_id, code in codes.items():
        where = f"{code['intercom_id']}:{code['digits']}"
        assert records["code_uuid"].get(code["uuid"]) == {"id": code_id}, f"code {code_id} lost its uuid entry"
        assert records["code_digits"].get(where) == {"id": code_id}, f"code {code_id} lost its digits entry"
        keypad = records.get("keypad", {}).get(where)
        assert (keypad is not None and keypad["code_id"] == code_id) or code_id in queued, f"code {code_id}: no keypad"
    for where, entry in records["code_digits"].items():
        assert entry["id"] in codes, f"digits {where} belong to no code"
    digits = [(code["intercom_id"], code["digits"]) for code in codes.values()]
    assert len(digits) == len(set(digits)), "an intercom holds the same digits twice"
    return codes


@pytest.mark.parametrize("point", ["before", "half", "after"])
def test_a_replica_killed_inside_a_commit_leaves_the_building_whole_and_the_other_answering(
    tmp_path: Path, point: str
) -> None:
    """B kills itself (SIGKILL) inside the commit of a code it creates: before sending it, with half of it sent to
    Redis, or once Redis applied it. A answers at once, and the building holds all of that code or none of it."""
    namespace = f"test-replicas-{uuid.uuid4().hex}"
    state = f"{REDIS_URL}?namespace={namespace}"
    a = _start(state, tmp_path / "a.log")
    b = _start(state, tmp_path / "b.log", env={"DOORCODES_DIE_IN_COMMIT": f"{point}:code"})
    try:
        token = _login(a).headers["Authorization"]
        body = {"expired_at": "2030-02-01 00:00"}
        with a.client("vms", **ALICE, Authorization=token) as vms_a:
            assert vms_a.post("/api/v1/intercom/181/codes", json={**body, "title": "before"}).status_code == 200
            with b.client("vms", **ALICE, Authorization=token) as vms_b, pytest.raises(httpx.TransportError):
                vms_b.post("/api/v1/intercom/181/codes", json={**body, "title": "killed"})
            assert b.process.wait(timeout=10) == -signal.SIGKILL

            def timed(request: Callable[[], httpx.Response]) -> httpx.Response:
                started = time.monotonic()
                answer = request()
                assert time.monotonic() - started < 1.0, "the survivor stalled"
                return answer

            assert timed(lambda: httpx.get(f"{a.base}/seam/health", timeout=5)).status_code == 200
            listed = timed(lambda: vms_a.get("/api/v1/intercom/codes", params={"per_page": 100}))
            assert listed.status_code == 200
            after = timed(lambda: vms_a.post("/api/v1/intercom/181/codes", json={**body, "title": "after"}))
            assert after.status_code == 200, after.text
        codes = _check_whole(httpx.get(f"{a.base}/_mock/snapshot").json())
        titles = [code["title"] for code in codes.values()]
        assert titles.count("before") == titles.count("after") == 1
        # Redis applied the commit (all of it) only when the process died after sending the whole of it.
        assert titles.count("killed") == (1 if point == "after" else 0)
    finally:
        for replica in (a, b):
            if replica.process.poll() is None:
                os.killpg(replica.process.pid, signal.SIGTERM)
                replica.process.wait(timeout=10)
        from mockserver.store.redis_store import RedisStore

        store = RedisStore(REDIS_URL, namespace=namespace)
        store.clear()
        store.close()


def test_an_answer_one_replica_kept_is_not_given_again_once_the_other_wrote(replicas: tuple[Replica, Replica]) -> None:
    """Each replica keeps answers to reads while its copy of the building is unchanged; another replica's write
    changes it, at the next request's catch-up."""
    a, b = replicas
    token = _login(a).headers["Authorization"]
    with (
        a.client("vms", **ALICE, Authorization=token) as vms_a,
        b.client("vms", **ALICE, Authorization=token) as vms_b,
    ):
        listed = vms_b.get("/api/v1/intercom/codes", params={"per_page": 100})
        assert vms_b.get("/api/v1/intercom/codes", params={"per_page": 100}).content == listed.content
        body = {"title": "Kept?", "expired_at": "2030-02-01 00:00"}
        created = vms_a.post("/api/v1/intercom/181/codes", json=body).json()
        again = vms_b.get("/api/v1/intercom/codes", params={"per_page": 100}).json()
        assert created in again["data"]
        assert again["meta"]["total"] == listed.json()["meta"]["total"] + 1
