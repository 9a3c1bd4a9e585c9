"""A barrage of odd but legal requests: media types in any letter case on every operation with a body, in all four
APIs; broken and foreign `Host` headers; the simulated clock pushed to the ends of time and left running.

Whatever the barrage sends, the mock answers below 500, with the vendor's own body (checked against the contract by
`contract_audit`), and a mixed-case media type gets exactly the answer of its lowercase spelling (RFC 9110 §8.3.1).
The state survives it: a SQLite file the barrage ran against opens again afterwards.
"""

from __future__ import annotations

import itertools
import json
import pathlib
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from mockserver.app import create_app
from mockserver.contracts import load_contract
from mockserver.domain.clock import ManualClock
from mockserver.testing import RunningMock, start_mock
from tests.mockserver.contract_audit import problems

START = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
PREFIXES = {"magicline": "/magicline", "seam": "/seam", "vms": "/vms", "control": "/_mock"}
HOUSE_UUID = "3043fde0-3c6d-4913-981f-2607f05fe74e"
ALICE_UUID = "5f0c6f5e-3d59-4e7a-9b61-0f2e8f1a2b13"
ML_KEY = {"X-API-KEY": "demo-magicline-mission"}
SEAM_AUTH = {"Authorization": "Bearer demo-seam-alice"}
VMS_HEADERS = {"X-Client": "web", "X-UUID": "barrage"}
VMS_AUTH = {"Authorization": "Bearer demo-vms-alice", **VMS_HEADERS}
AUTH = {"magicline": ML_KEY, "seam": SEAM_AUTH, "vms": VMS_AUTH, "control": {}}

#: the value of each path parameter, by name (the demo building's own records)
PATH_VALUES = {
    "customerId": "1002",
    "accessMediumId": "1102",
    "intercom_id": HOUSE_UUID,
    "access_code_id": "00000000-0000-4000-8000-000000000000",
    "intercom": "180",
    "fault_id": "no-such-fault",
    "webhook_id": "no-such-webhook",
}
#: query parameters an operation needs to get past validation
QUERIES = {
    "authorizePage": {"redirect_uri": "https://barrage.integrations.getseam.com/cb"},
    "listAccessCodes": {"intercom_id": HOUSE_UUID},
}

_serial = itertools.count(1)


def _unique() -> str:
    return f"{next(_serial):08d}"


#: a body each operation takes; a fresh one per request, so that repeating it repeats its answer
BODIES: dict[str, Callable[[], dict[str, Any]]] = {
    "addAccessMediums": lambda: {"type": "PIN", "value": _unique()},
    "addAccessMedium": lambda: {"type": "PIN", "value": _unique()},
    "updateAccessMediums": lambda: {"value": _unique()},
    "authorizeLogin": lambda: {
        "email": "alice@demo.test",
        "password": "alice-password",
        "redirect_uri": "https://barrage.integrations.getseam.com/cb",
    },
    "exchangeToken": lambda: {"code": "x" * 32, "client_id": "seam", "client_secret": "seamsecret"},
    "unlockIntercom": lambda: {"unlock_time": "5000"},
    "login": lambda: {"login": "alice@demo.test", "password": "alice-password"},
    "deleteCodes": lambda: {"ids": [987654]},
    "createCode": lambda: {"title": "Barrage " + _unique(), "expired_at": "2030-02-01 10:00"},
    "authorizeChannel": lambda: {"socket_id": "1234.5678", "channel_name": "private-user.13"},
    "mintMagiclineKey": lambda: {"studio_id": 1238735970},
    "mintSeamToken": lambda: {"owner_id": ALICE_UUID},
    "mintVmsToken": lambda: {"user_id": 13},
    "setClock": lambda: {"frozen": False},
    "advanceClock": lambda: {"seconds": 0},
    "addFault": lambda: {"api": "seam", "operation_id": "health", "latency_ms": 0, "count": 1},
    "updateSettings": lambda: {"journal_size": 1000},
    "setDeviceOnline": lambda: {"online": True},
    "presentCredential": lambda: {"kind": "keypad", "value": "0000"},
    "programCode": lambda: {"name": "Barrage " + _unique()},
    "registerWebhook": lambda: {"url": "http://127.0.0.1:9/hook", "studio_id": 1238735970},
    "revokeSeamToken": lambda: {"access_token": "no-such-token"},
}

#: every spelling of each media type the contracts accept; the first is the one the contracts use
SPELLINGS = {
    "application/json": [
        "application/json",
        "Application/json",
        "APPLICATION/JSON",
        "application/Json",
        "application/JSON; charset=utf-8",
        "Application/JSON;CHARSET=UTF-8",
    ],
    "application/x-www-form-urlencoded": [
        "application/x-www-form-urlencoded",
        "Application/x-www-form-urlencoded",
        "APPLICATION/X-WWW-FORM-URLENCODED",
        "application/X-WWW-Form-Urlencoded; charset=utf-8",
    ],
}

BROKEN_HOSTS = [
    "127.0.0.1:99999",
    "127.0.0.1:abc",
    "[::1",
    "[::1]x",
    "[not-an-address]",
    "127.0.0.1:",
    ":80",
    "",
    "exa mple.test",
    "user@127.0.0.1",
    "127.0.0.1:80/path",
    "127.0.0.1:-1",
    "evil.example",
    "evil.example:8443",
]

#: moments to move the clock to: the ends of the supported window, past them, and the ends of datetime
CLOCK_MOVES = [
    "9999-12-31T23:59:58Z",
    "9999-12-31T23:59:59.999999+00:00",
    "0001-01-01T00:00:00+00:01",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00-23:59",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "8999-12-31T23:59:59Z",
    "9000-01-01T00:00:00Z",
    "9000-01-01T00:00:01Z",
]


class Ticker:
    """The clock's real time, moved by the test: waiting costs no time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Barrage:
    """Sends requests and keeps every answer, to judge them all at the end."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.answers: list[tuple[str, httpx.Response, bool]] = []
        #: requests the mock dropped the connection on instead of answering
        self.dropped: list[str] = []
        #: anything else wrong, found by the test as it goes
        self.faults: list[str] = []

    def send(self, label: str, method: str, path: str, *, audit: bool = True, **kwargs: Any) -> httpx.Response | None:
        """The answer (None when the connection dropped); ``audit`` False leaves its body to the caller to judge."""
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            self.dropped.append(f"{label}: {exc!r}")
            return None
        self.answers.append((label, response, audit))
        return response

    def verdict(self) -> None:
        server_errors = [
            f"{label}: {r.status_code} {r.text[:160]}" for label, r, _ in self.answers if r.status_code >= 500
        ]
        foreign = [
            f"{label}: {'; '.join(found)[:300]}" for label, r, audit in self.answers if audit and (found := problems(r))
        ]
        counts = Counter(f"{r.status_code // 100}xx" for _, r, _ in self.answers)
        summary = (
            f"{len(self.answers) + len(self.dropped)} requests: {dict(sorted(counts.items()))}, "
            f"{len(self.dropped)} dropped, {len(foreign)} off contract, {len(self.faults)} other faults"
        )
        wrong = [*server_errors, *self.dropped, *foreign, *self.faults]
        assert not wrong, summary + "\n" + "\n".join(wrong[:40])


def _path(api: str, template: str) -> str:
    for name, value in PATH_VALUES.items():
        template = template.replace("{" + name + "}", value)
    return PREFIXES[api] + template


def _encode(media_type: str, body: dict[str, Any]) -> bytes:
    if media_type == "application/json":
        return json.dumps(body).encode()
    return urlencode(body).encode()


def _operations(api: str) -> list[tuple[str, tuple[str, str, dict[str, Any]]]]:
    return [(op.operation_id, (op.method, op.path, op.raw)) for op in load_contract(api).operations.values()]


def _body_operations() -> list[tuple[str, str, str, str, str]]:
    """(api, operation id, method, path, media type) of every operation that takes a body, for each media type."""
    found = []
    for api in PREFIXES:
        for operation_id, (method, path, operation) in _operations(api):
            for media_type in operation.get("requestBody", {}).get("content", {}):
                found.append((api, operation_id, method, path, media_type))
    return found


def _example_body(api: str, operation_id: str, media_type: str) -> dict[str, Any]:
    """An operation this barrage has no body for (a newer one) gets its contract's example, or an empty object."""
    content = load_contract(api).operation(operation_id).raw["requestBody"]["content"][media_type]
    example = content.get("example")
    return example if isinstance(example, dict) else {}


@pytest.fixture(params=["compiled", "connexion"])
def mock(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[tuple[RunningMock, Ticker]]:
    ticker = Ticker()
    clock = ManualClock(START, monotonic=ticker)
    with start_mock(seed=7, clock=clock, pipeline=request.param, state_path=tmp_path / "state.db") as running:
        yield running, ticker


@pytest.fixture
def barrage(mock: tuple[RunningMock, Ticker]) -> Iterator[Barrage]:
    with httpx.Client(base_url=mock[0].base_url, timeout=30) as client:
        yield Barrage(client)


def test_media_types_in_any_case_get_the_answer_of_their_lowercase_spelling(barrage: Barrage) -> None:
    differing = []
    for api, operation_id, method, path, media_type in _body_operations():
        if media_type not in SPELLINGS:
            continue
        make = BODIES.get(operation_id) or (lambda: _example_body(api, operation_id, media_type))  # noqa: B023
        statuses = {}
        for spelling in SPELLINGS[media_type]:
            response = barrage.send(
                f"{operation_id} {spelling}",
                method,
                _path(api, path),
                headers={**AUTH[api], "content-type": spelling},
                content=_encode(media_type, make()),
                params=QUERIES.get(operation_id),
            )
            statuses[spelling] = response.status_code
        # Repeating the request repeats its answer when its body is fresh each time (the table's bodies are).
        if operation_id in BODIES and len(set(statuses.values())) > 1:
            differing.append(f"{operation_id} ({media_type}): {statuses}")
    barrage.verdict()
    assert not differing, "\n".join(differing)


def test_broken_and_foreign_hosts_never_reach_an_answer(barrage: Barrage, mock: tuple[RunningMock, Ticker]) -> None:
    gets = [
        (api, operation_id, path)
        for api in PREFIXES
        for operation_id, (method, path, _) in _operations(api)
        if method == "GET"
    ]
    for host in BROKEN_HOSTS:
        for api, operation_id, path in gets:
            barrage.send(
                f"{operation_id} Host {host!r}",
                "GET",
                _path(api, path),
                headers={**AUTH[api], "host": host},
                params=QUERIES.get(operation_id),
            )
        # Trailing-slash redirects point at the mock itself, never at the host a client named. (No contract has
        # them, so the audit would refuse them; their Location is judged here.)
        for api, path in (("vms", "/api/v1/wsurl/"), ("seam", "/door_locks/"), ("control", "/clock/")):
            response = barrage.send(
                f"{path} Host {host!r}", "GET", PREFIXES[api] + path, headers={"host": host}, audit=False
            )
            location = "" if response is None else response.headers.get("location", "")
            if location != PREFIXES[api] + path.rstrip("/"):
                barrage.faults.append(f"{path} Host {host!r}: Location {location!r}")
    barrage.verdict()
    # The socket's address stands in for a Host that names none: clients still get a URL they can use.
    wsurl = barrage.client.get("/vms/api/v1/wsurl", headers={**VMS_AUTH, "X-UUID": "hosts", "host": "[::1"})
    assert wsurl.status_code == 200, wsurl.text
    assert urlsplit(wsurl.json()["ws_url"]).port == urlsplit(mock[0].base_url).port


def _probe(barrage: Barrage, label: str) -> None:
    """One of everything the clock drives: reads, a new code, the door, a QR code, the device, the state."""
    barrage.send(f"{label} codes", "GET", "/vms/api/v1/intercom/codes", headers=VMS_AUTH)
    barrage.send(
        f"{label} create",
        "POST",
        "/vms/api/v1/intercom/180/codes",
        headers=VMS_AUTH,
        json={"title": "Clock", "expired_at": "9999-12-31 23:59"},
    )
    barrage.send(f"{label} open", "POST", "/vms/api/v1/intercom/180/open-door", headers=VMS_AUTH)
    barrage.send(
        f"{label} unlock",
        "POST",
        f"/seam/intercoms/{HOUSE_UUID}/unlock",
        headers=SEAM_AUTH,
        json={"unlock_time": "5000"},
    )
    barrage.send(f"{label} qr", "GET", "/magicline/v1/customers/1001/access-code", headers=ML_KEY)
    barrage.send(f"{label} customer", "GET", "/magicline/v1/customers/1001", headers=ML_KEY)
    barrage.send(f"{label} present", "POST", "/_mock/intercoms/180/present", json={"kind": "keypad", "value": "1234"})
    barrage.send(
        f"{label} program",
        "POST",
        "/_mock/intercoms/180/codes",
        json={"name": "Clock", "expires_at": "9999-12-31T00:00:00Z"},
    )
    barrage.send(f"{label} events", "GET", "/_mock/intercoms/180/events")
    barrage.send(f"{label} clock", "GET", "/_mock/clock")
    barrage.send(f"{label} snapshot", "GET", "/_mock/snapshot")


def test_the_clock_at_the_ends_of_time(
    barrage: Barrage, mock: tuple[RunningMock, Ticker], tmp_path: pathlib.Path
) -> None:
    running, ticker = mock
    for moment in CLOCK_MOVES:
        for frozen in (False, True):
            barrage.send(f"set {moment} frozen={frozen}", "PUT", "/_mock/clock", json={"now": moment, "frozen": frozen})
            _probe(barrage, moment)
            ticker.now += 3  # three seconds of real time pass
            _probe(barrage, f"{moment} +3 s")
    barrage.send("back", "PUT", "/_mock/clock", json={"now": "2030-01-01T08:00:00Z", "frozen": False})
    for step in range(100):
        barrage.send(f"advance {step}", "POST", "/_mock/clock/advance", json={"seconds": 3153600000})
        if step % 10 == 0:
            _probe(barrage, f"advance {step}")
    _probe(barrage, "advanced")
    ticker.now += 3
    _probe(barrage, "advanced +3 s")
    barrage.send("back again", "PUT", "/_mock/clock", json={"now": "2030-01-01T08:00:00Z"})
    _probe(barrage, "back again")
    barrage.verdict()
    running.stop()
    # What the barrage left in the state file opens again.
    reopened = create_app(state_path=tmp_path / "state.db", seed=7)
    reopened.runtime.building.store.close()
