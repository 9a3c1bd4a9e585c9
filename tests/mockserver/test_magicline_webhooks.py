"""Magicline webhooks reach a real local receiver as the vendor sends them, and failed deliveries are retried with
backoff on the simulated clock."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mockserver.testing import RunningMock, start_mock

MAGICLINE = {"X-API-KEY": "demo-magicline-mission"}


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and fails the first ``failures`` of them."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "body": json.loads(body)})
                status = 500 if len(receiver.received) <= receiver.failures else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/magicline-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Deliveries happen on the mock's event loop; wait for their effect, never for a fixed time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a delivery"
        time.sleep(0.01)


@pytest.fixture
def mock() -> Iterator[RunningMock]:
    with start_mock(seed=6) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made: list[Receiver] = []

    def make(failures: int = 0) -> Receiver:
        made.append(Receiver(failures))
        return made[-1]

    yield make  # type: ignore[misc]
    for each in made:
        each.close()


def _deliveries(mock: RunningMock) -> list[dict[str, Any]]:
    with mock.client("control") as control:
        return control.get("/webhooks/deliveries").json()["deliveries"]


def test_medium_changes_are_delivered_as_the_vendor_does(mock: RunningMock, receiver: Any) -> None:
    target = receiver()
    control = mock.client("control")
    hook = control.post("/webhooks", json={"url": target.url, "studio_id": 1238735970, "api_key": "partner-key"}).json()
    assert hook["api_key"] == "partner-key"
    magicline = mock.client("magicline", headers=MAGICLINE)
    medium = magicline.post("/v1/customers/1002/access-mediums", json={"type": "CARD_NUMBER", "value": "777"}).json()
    magicline.put(f"/v1/customers/1002/access-mediums/{medium['id']}", json={"value": "778"})
    magicline.delete(f"/v1/customers/1002/access-mediums/{medium['id']}")
    # Another studio's change does not go to this target.
    mock.client("magicline").post(
        "/v1/customers/2001/access-mediums",
        headers={"X-API-KEY": "demo-magicline-harbour"},
        json={"type": "PIN", "value": "999"},
    )
    _wait(lambda: len(target.received) == 3)

    types = [r["body"]["payload"][0]["type"] for r in target.received]
    assert types == [
        "CUSTOMER_ACCESS_MEDIUM_CREATED",
        "CUSTOMER_ACCESS_MEDIUM_UPDATED",
        "CUSTOMER_ACCESS_MEDIUM_DELETED",
    ]
    for request in target.received:
        assert request["headers"]["X-API-KEY"] == "partner-key"
        body = request["body"]
        assert set(body) == {"entityId", "uuid", "payload"} and body["entityId"] == 1002
        (event,) = body["payload"]
        assert set(event) == {"timestamp", "type", "content"} and isinstance(event["timestamp"], int)
    assert target.received[1]["body"]["payload"][0]["content"] == {**medium, "value": "778"}
    assert len({r["body"]["uuid"] for r in target.received}) == 3
    # The target has the request before the mock has its answer: a delivery is recorded once answered.
    _wait(lambda: len(_deliveries(mock)) == 3)
    assert [d["status"] for d in _deliveries(mock)] == [204, 204, 204]


def test_failed_deliveries_are_retried_with_backoff(mock: RunningMock, receiver: Any) -> None:
    target = receiver(failures=2)
    mock.client("control").post("/webhooks", json={"url": target.url, "studio_id": 1238735970})
    mock.client("magicline").post(
        "/v1/customers/1003/access-mediums",
        headers=MAGICLINE,
        json={"type": "BARCODE", "value": "retry-me"},
    )
    _wait(lambda: len(_deliveries(mock)) == 1)
    first = _deliveries(mock)[0]
    assert first["status"] == 500 and first["attempt"] == 1 and first["next_attempt_at"]

    mock.clock.advance(seconds=29)  # not due yet
    assert len(_deliveries(mock)) == 1
    mock.clock.advance(seconds=1)  # 30 s after the first attempt
    _wait(lambda: len(_deliveries(mock)) == 2)
    second = _deliveries(mock)[1]
    assert second["status"] == 500 and second["attempt"] == 2
    mock.clock.advance(seconds=60)  # the wait doubles
    _wait(lambda: len(_deliveries(mock)) == 3)
    third = _deliveries(mock)[2]
    assert third["status"] == 204 and third["attempt"] == 3 and third["next_attempt_at"] is None
    assert len({r["body"]["uuid"] for r in target.received}) == 1  # the same event, three times


def test_an_unreachable_target_is_logged_and_registration_checks_the_studio(mock: RunningMock) -> None:
    control = mock.client("control")
    assert control.post("/webhooks", json={"url": "http://127.0.0.1:9/nothing", "studio_id": 42}).status_code == 400
    hook = control.post("/webhooks", json={"url": "http://127.0.0.1:9/nothing", "studio_id": 1238735970}).json()
    mock.client("magicline").post(
        "/v1/customers/1003/access-mediums",
        headers=MAGICLINE,
        json={"type": "PIN", "value": "5150"},
    )
    _wait(lambda: len(_deliveries(mock)) == 1)
    (delivery,) = _deliveries(mock)
    assert delivery["status"] is None and delivery["error"]
    assert control.get("/webhooks").json()["webhooks"] == [hook]
    assert control.delete(f"/webhooks/{hook['id']}").status_code == 204
    assert control.get("/webhooks").json()["webhooks"] == []
