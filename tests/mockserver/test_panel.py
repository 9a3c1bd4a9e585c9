"""The live panel at /_mock/panel: what it shows, how its websocket follows the building, who may open it off
loopback, and the page itself in a real browser (Debian's Chromium, driven by Playwright; no browser download).

Business time only moves through the controllable clock. Waiting for a push or for the page is waiting for I/O:
the websocket client and Playwright wait up to a few seconds for what should come within a fraction of one.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from mockserver.cli import _banner
from mockserver.contracts import load_contract
from mockserver.domain.clock import ManualClock
from mockserver.testing import RunningMock, start_mock
from tests.mockserver.contract_audit import assert_conforms, audited_client
from tests.mockserver.store.test_store_contract import REDIS_URL, needs_redis
from tests.specs import resolve_refs

START = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
VMS = {"Authorization": "Bearer demo-vms-alice", "X-Client": "web", "X-UUID": "panel-tests"}
SEAM = {"Authorization": "Bearer demo-seam-alice"}
MAGICLINE = {"X-API-KEY": "demo-magicline-mission"}
HOUSE = "3043fde0-3c6d-4913-981f-2607f05fe74e"
TOKEN = "panel-t0ken"
#: how long a test waits for a push or for the page (I/O, not business time)
WAIT_SECONDS = 5
CHROMIUM = os.environ.get("DOORCODES_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def mock() -> Iterator[RunningMock]:
    with start_mock(seed=0, start=START, validate_responses=True) as running:
        yield running


@pytest.fixture
def guarded() -> Iterator[RunningMock]:
    """The mock as it runs off loopback: its control API wants the token."""
    with start_mock(seed=0, start=START, validate_responses=True, control_token=TOKEN) as running:
        yield running


def _create_code(mock: RunningMock, title: str, expires: datetime, intercom: int = 180) -> dict[str, Any]:
    response = mock.client("vms").post(
        f"/api/v1/intercom/{intercom}/codes",
        headers=VMS,
        json={"title": title, "expired_at": expires.strftime("%Y-%m-%d %H:%M")},
    )
    assert response.status_code == 200, response.text
    return response.json()


def _seam_code_id(mock: RunningMock, digits: str) -> str:
    listed = mock.client("seam").get("/access_codes", params={"intercom_id": HOUSE}, headers=SEAM).json()
    return next(code["access_code_id"] for code in listed["access_codes"] if code["code"] == digits)


# ---------------------------------------------------------------------------------------------- the state


def _state_errors(state: Any) -> list[str]:
    spec = load_contract("control").raw
    schema = resolve_refs(spec["components"]["schemas"]["PanelState"], spec)
    return [error.message for error in OAS30Validator(schema).iter_errors(state)]


def _intercom(state: dict[str, Any], intercom_id: int) -> dict[str, Any]:
    return next(i for i in state["intercoms"] if i["id"] == intercom_id)


def _digits(state: dict[str, Any], intercom_id: int) -> list[str]:
    return [code["code"] for code in _intercom(state, intercom_id)["codes"]]


def test_the_state_shows_every_intercom_with_owner_door_codes_events_and_the_customers(mock: RunningMock) -> None:
    with audited_client(mock) as client:
        state = client.get("/_mock/panel/state").json()
    assert state["clock"] == {"now": START.isoformat(), "frozen": True}
    assert [(i["id"], i["name"], i["owner_name"]) for i in state["intercoms"]] == [
        (180, "House", "Alice Example"),
        (181, "Back Door", "Alice Example"),
        (190, "Harbour Entrance", "Bob Example"),
    ]
    house = _intercom(state, 180)
    assert house["online"] is True and house["door"] == {"locked": True, "unlocked_until": None}
    assert [(c["code"], c["name"], c["expired"]) for c in house["codes"]] == [
        ("12345", "Visitor 1", False),  # newest first
        ("1234", "Resident 001 Code", False),
    ]
    assert house["codes_total"] == 2 and house["events"] == []
    edgar = next(c for c in state["customers"] if c["customer_id"] == 1001)
    assert edgar["credentials"] == [{"kind": "card", "value": "1290158199"}]
    assert state["customers_total"] == 5


def test_the_page_and_its_assets_come_from_the_mock_alone(mock: RunningMock) -> None:
    with audited_client(mock) as client:
        page = client.get("/_mock/panel")
        assert page.headers["content-type"].startswith("text/html")
        references = re.findall(r'(?:src|href)="([^"]*)"', page.text)
        assert references, "the page names no assets"
        for reference in references:
            # Relative to the page (so they follow it behind a proxy's prefix), or inline: nothing from elsewhere.
            assert reference.startswith(("panel/assets/", "data:")), reference
        texts = [page.text]
        for reference in references:
            if reference.startswith("panel/assets/"):
                asset = client.get("/_mock/" + reference)
                media_type = "text/javascript" if reference.endswith(".js") else "text/css"
                assert asset.headers["content-type"].startswith(media_type)
                texts.append(asset.text)
        assert client.get("/_mock/panel/assets/missing.js").status_code == 404
    for text in texts:
        assert not re.search(r"https?://", text), "an asset names an address outside the mock"


def test_a_plain_request_for_the_push_channel_is_told_to_upgrade(mock: RunningMock) -> None:
    answer = assert_conforms(mock.client("control").get("/panel/live"))
    assert answer.status_code == 426 and answer.headers["upgrade"] == "websocket"


# ---------------------------------------------------------------------------------------------- the push channel


def _live_url(mock: RunningMock) -> str:
    return mock.base_url.replace("http://", "ws://") + "/_mock/panel/live"


def _next_state(socket: ClientConnection) -> dict[str, Any]:
    message = json.loads(socket.recv(timeout=WAIT_SECONDS))
    assert message["type"] == "state"
    assert not _state_errors(message["state"]), _state_errors(message["state"])
    return message["state"]


def _until(socket: ClientConnection, holds: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first pushed state for which ``holds`` is true (each one pushed on the way is checked too)."""
    while True:
        state = _next_state(socket)
        if holds(state):
            return state


def test_the_push_channel_sends_the_state_then_every_change(mock: RunningMock) -> None:
    control = mock.urls["control"]
    http = mock.client()  # the changes; what is pushed comes over the websocket
    with connect(_live_url(mock)) as socket:
        first = _next_state(socket)
        assert first == http.get(control + "/panel/state").json()

        code = _create_code(mock, "Plumber", START + timedelta(hours=2))  # a VMS create
        state = _until(socket, lambda s: code["code"] in _digits(s, 180))
        assert _intercom(state, 180)["codes"][0]["name"] == "Plumber"

        decision = http.post(control + "/intercoms/180/present", json={"kind": "keypad", "value": code["code"]})
        assert decision.json()["granted"] is True  # a keypad grant
        state = _until(socket, lambda s: not _intercom(s, 180)["door"]["locked"])
        assert [e["type"] for e in _intercom(state, 180)["events"]] == ["access.granted", "door.unlocked"]

        http.post(control + "/clock/advance", json={"seconds": 60}).raise_for_status()  # a clock move
        state = _until(socket, lambda s: s["clock"]["now"] == (START + timedelta(seconds=60)).isoformat())
        assert _intercom(state, 180)["door"]["locked"] is True  # relocked 5 s after the grant
        assert _intercom(state, 180)["events"][-1]["type"] == "door.locked"

        seam_id = _seam_code_id(mock, code["code"])
        assert http.delete(f"{mock.urls['seam']}/access_codes/{seam_id}", headers=SEAM).status_code == 200
        _until(socket, lambda s: code["code"] not in _digits(s, 180))  # a Seam delete

        http.put(control + "/intercoms/181/online", json={"online": False}).raise_for_status()
        _until(socket, lambda s: _intercom(s, 181)["online"] is False)  # an online switch

        medium = http.post(
            mock.urls["magicline"] + "/v1/customers/1002/access-mediums",
            headers=MAGICLINE,
            json={"type": "CARD_NUMBER", "value": "4242424242"},
        )
        assert medium.status_code == 200, medium.text
        _until(
            socket,
            lambda s: (
                {"kind": "card", "value": "4242424242"}
                in next(c for c in s["customers"] if c["customer_id"] == 1002)["credentials"]
            ),
        )


def test_changes_that_publish_no_event_reach_the_page_too(mock: RunningMock) -> None:
    control = mock.urls["control"]
    http = mock.client()  # the changes; what is pushed comes over the websocket
    snapshot = http.get(control + "/snapshot").json()
    with connect(_live_url(mock)) as socket:
        _next_state(socket)
        # Issuing a QR access code publishes no domain event; the store's revision shows the change.
        qr = http.get(mock.urls["magicline"] + "/v1/customers/1001/access-code", headers=MAGICLINE).json()
        state = _until(socket, lambda s: any(c["kind"] == "qr" for c in s["customers"][0]["credentials"]))
        assert {"kind": "qr", "value": qr["content"]} in [
            {"kind": c["kind"], "value": c["value"]} for c in state["customers"][0]["credentials"]
        ]
        # Neither does restoring a snapshot.
        http.put(control + "/snapshot", json=snapshot).raise_for_status()
        _until(socket, lambda s: all(c["kind"] != "qr" for c in s["customers"][0]["credentials"]))


def test_a_door_relocking_on_a_running_clock_is_pushed_without_any_request() -> None:
    class Ticker:  # the clock's real time, moved by the test: no second is waited for
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    ticker = Ticker()
    with start_mock(seed=0, clock=ManualClock(START, monotonic=ticker)) as mock, connect(_live_url(mock)) as socket:
        _next_state(socket)
        mock.client("control").post("/intercoms/180/present", json={"kind": "keypad", "value": "1234"})
        _until(socket, lambda s: not _intercom(s, 180)["door"]["locked"])
        ticker.now += 6  # past the door's 5 s; nobody asks the mock anything
        state = _until(socket, lambda s: _intercom(s, 180)["door"]["locked"])
        assert _intercom(state, 180)["events"][-1]["type"] == "door.locked"


@needs_redis
def test_on_a_shared_redis_state_a_page_follows_its_replica_and_reads_the_others_anew() -> None:
    # A Redis store has no revision to look at: what reaches the page here came by the building's events alone.
    state = f"{REDIS_URL}?namespace=test-panel-{uuid.uuid4().hex}"
    try:
        with start_mock(seed=0, start=START, state_path=state) as one, start_mock(start=START, state_path=state) as two:
            with connect(_live_url(one)) as socket:
                _next_state(socket)
                mine = _create_code(one, "Through this replica", START + timedelta(hours=2))
                _until(socket, lambda s: mine["code"] in _digits(s, 180))
            other = _create_code(two, "Through the other", START + timedelta(hours=2))
            with connect(_live_url(one)) as socket:
                assert {mine["code"], other["code"]} <= set(_digits(_next_state(socket), 180))
    finally:
        from mockserver.store.redis_store import RedisStore

        store = RedisStore(REDIS_URL, namespace=state.rsplit("=", 1)[1])
        store.clear()
        store.close()


def test_the_server_stops_with_a_page_still_open() -> None:
    mock = start_mock(seed=0)
    with connect(_live_url(mock)) as socket:
        _next_state(socket)
        mock.stop()
        assert not mock._thread.is_alive(), "the open websocket kept the server from stopping"
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=WAIT_SECONDS)


# ---------------------------------------------------------------------------------------------- off loopback


def test_off_loopback_the_panel_wants_the_control_token(guarded: RunningMock) -> None:
    control = guarded.client("control")
    for path in ("/panel", "/panel/state", "/panel/assets/panel.js", "/panel?token=wrong"):
        refused = control.get(path)
        assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
        assert "/_mock/panel?token=TOKEN" in refused.json()["detail"]
    with pytest.raises(InvalidStatus) as refused_socket:
        connect(_live_url(guarded))
    assert refused_socket.value.response.status_code == 403
    assert control.get("/panel", headers={"X-Mock-Control-Token": TOKEN}).status_code == 200


def test_the_token_in_the_address_becomes_a_cookie_for_the_control_api() -> None:
    # Over the socket, as a browser reaches the mock: the cookie is named after the port it came to, and counts only
    # for an Origin that is the mock's own (the Host it was reached by, or the public URL behind a proxy).
    with start_mock(
        seed=0, start=START, validate_responses=True, control_token=TOKEN, public_url="https://mock.example"
    ) as guarded:
        control = guarded.urls["control"]
        port = guarded.base_url.rsplit(":", 1)[1]
        kept = httpx.get(control + "/panel", params={"token": TOKEN})
        assert kept.status_code == 303 and kept.headers["location"] == "panel"  # the address without the token
        cookie = kept.headers["set-cookie"]
        assert cookie.startswith(f"doorcodes_control_{port}={TOKEN};")
        assert {"httponly", "samesite=strict", "path=/_mock"} <= {part.strip().lower() for part in cookie.split(";")}

        jar = {f"doorcodes_control_{port}": TOKEN}
        with httpx.Client(base_url=control, cookies=jar) as browser:
            assert browser.get("/panel").status_code == 200
            assert browser.get("/panel/state").status_code == 200
            own = {"Origin": guarded.base_url}
            assert browser.post("/clock/advance", json={"seconds": 1}, headers=own).status_code == 200
            # Another site on the same host (SameSite ignores ports) does not get the cookie's power.
            foreign = {"Origin": "http://127.0.0.1:1"}
            assert browser.post("/clock/advance", json={"seconds": 1}, headers=foreign).status_code == 401
            # Behind a proxy the page's origin is the public URL's.
            proxied = {"Origin": "https://mock.example"}
            assert browser.post("/clock/advance", json={"seconds": 1}, headers=proxied).status_code == 200
            # The address carries the token to the panel's page only.
            assert httpx.get(control + "/clock", params={"token": TOKEN}).status_code == 401
        with connect(_live_url(guarded), additional_headers={"Cookie": f"doorcodes_control_{port}={TOKEN}"}) as socket:
            assert _next_state(socket)["intercoms"]
        journal = httpx.get(control + "/journal", headers={"X-Mock-Control-Token": TOKEN}).text
        assert TOKEN not in journal


def test_the_banner_links_the_panel_with_the_token_when_one_is_needed() -> None:
    urls = {"control": "http://10.0.0.5:8080/_mock"}
    credentials: dict[str, Any] = {"magicline": [], "seam": {"owners": []}, "vms": []}
    assert "panel of the building: http://10.0.0.5:8080/_mock/panel\n" in _banner(urls, credentials, None)
    assert "/_mock/panel?token=s3cret%2F1\n" in _banner(urls, credentials, "s3cret/1")


# ---------------------------------------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is missing: pip install '.[test]'")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does), or set DOORCODES_CHROMIUM")
    from playwright.sync_api import Error as PlaywrightError

    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except PlaywrightError as error:
            pytest.skip(f"Chromium at {CHROMIUM} does not start: {error.message.splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_SECONDS * 1000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"the page's script failed: {errors}"


def _open(page: Any, mock: RunningMock) -> Any:
    from playwright.sync_api import expect

    page.goto(mock.urls["control"] + "/panel")
    expect(page.locator("#connection")).to_have_text("live")
    page.evaluate("window.notReloaded = true")
    return expect


def test_the_page_lists_the_demo_building(page: Any, mock: RunningMock) -> None:
    expect = _open(page, mock)
    expect(page.get_by_role("article")).to_have_count(3)
    house = page.get_by_role("article", name="House")
    expect(house).to_contain_text("owner Alice Example (user 13)")
    expect(house.locator(".door")).to_have_text("Locked")
    expect(house.get_by_role("switch", name="House online")).to_be_checked()
    expect(house.get_by_role("table", name="Codes of House")).to_contain_text("12345")
    expect(page.get_by_role("article", name="Harbour Entrance")).to_contain_text("owner Bob Example")
    expect(page.locator("#clock-now")).to_have_text("2030-01-01 08:00:00 UTC")
    expect(page.locator("#clock-mode")).to_have_text("frozen")
    expect(page.locator("#customers")).to_contain_text("Edgar Bullock")


def test_a_vms_code_appears_live_opens_the_door_on_the_keypad_and_goes_with_seam(page: Any, mock: RunningMock) -> None:
    expect = _open(page, mock)
    house = page.get_by_role("article", name="House")
    code = _create_code(mock, "Plumber", START + timedelta(hours=2))["code"]
    row = house.get_by_role("row").filter(has_text="Plumber")
    expect(row).to_contain_text(code)
    expect(row).to_contain_text("valid")

    for digit in code:
        house.get_by_role("button", name=f"Key {digit}").click()
    expect(house.get_by_role("textbox", name="Keypad digits at House")).to_have_value(code)
    house.get_by_role("button", name="Enter the code at House").click()
    expect(house.locator(".decision")).to_contain_text("Granted")
    expect(house.locator(".door")).to_have_text("Unlocked · 5 s left")
    expect(house.get_by_role("list", name="Recent events at House").get_by_role("listitem").first).to_contain_text(
        "door unlocked by credential"
    )
    expect(house.get_by_role("list", name="Recent events at House")).to_contain_text("access granted · keypad")
    assert mock.client("control").get("/intercoms/180").json()["door"]["locked"] is False

    seam_id = _seam_code_id(mock, code)
    assert mock.client("seam").delete(f"/access_codes/{seam_id}", headers=SEAM).status_code == 200
    expect(row).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True


def test_advancing_the_clock_past_a_codes_expiry_shows_it_expired(page: Any, mock: RunningMock) -> None:
    expect = _open(page, mock)
    _create_code(mock, "Courier", START + timedelta(hours=1))
    row = page.get_by_role("article", name="House").get_by_role("row").filter(has_text="Courier")
    expect(row).to_contain_text("valid")

    page.get_by_role("button", name="Advance the clock by 1 hour").click()
    expect(page.locator("#clock-now")).to_have_text("2030-01-01 09:00:00 UTC")
    expect(row).to_contain_text("valid")  # at its expiry, not past it
    page.get_by_role("button", name="Advance the clock by 1 minute").click()
    expect(page.locator("#clock-now")).to_have_text("2030-01-01 09:01:00 UTC")
    expect(row).to_contain_text("expired")
    listed = mock.client("vms").get("/api/v1/intercom/codes", headers=VMS).json()["data"]
    assert next(code for code in listed if code["title"] == "Courier")["is_expired"] is True

    page.get_by_role("button", name="Advance the clock by 1 day").click()
    expect(page.locator("#clock-now")).to_have_text("2030-01-02 09:01:00 UTC")
    expect(row).to_have_count(0)  # gone 24 hours after its expiry
    assert page.evaluate("window.notReloaded") is True


def test_switching_an_intercom_offline_disconnects_it_for_seam(page: Any, mock: RunningMock) -> None:
    expect = _open(page, mock)
    house = page.get_by_role("article", name="House")
    switch = house.get_by_role("switch", name="House online")
    switch.uncheck()
    expect(house.locator(".online-text")).to_have_text("offline")
    assert mock.client("control").get("/intercoms/180").json()["online"] is False
    seam = mock.client("seam")
    unlock = seam.post(f"/intercoms/{HOUSE}/unlock", headers=SEAM, json={"unlock_time": "5000"})
    assert unlock.status_code == 500 and unlock.json()["error_id"] == "INTERCOM_DISCONNECTED"

    switch.check()
    expect(house.locator(".online-text")).to_have_text("online")
    unlock = seam.post(f"/intercoms/{HOUSE}/unlock", headers=SEAM, json={"unlock_time": "5000"})
    assert unlock.status_code == 200, unlock.text
    expect(house.locator(".door")).to_have_text("Unlocked · 5 s left")


def test_a_customers_card_and_qr_code_are_presented_at_a_door(page: Any, mock: RunningMock) -> None:
    expect = _open(page, mock)
    house = page.get_by_role("article", name="House")
    value = house.get_by_role("combobox", name="Credential to present at House")
    present = house.get_by_role("button", name="Present the credential at House")

    value.fill("1290158199")  # Edgar's card: the suggestion brings its kind along
    expect(house.get_by_role("combobox", name="Credential kind to present at House")).to_have_value("card")
    present.click()
    expect(house.locator(".decision")).to_have_text("Granted (granted: customer 1001 (CARD_NUMBER))")

    value.fill("5500667788")  # Hanna's card: her studio is not admitted at House
    present.click()
    expect(house.locator(".decision")).to_contain_text("Denied (studio_not_admitted")

    qr = mock.client("magicline").get("/v1/customers/1001/access-code", headers=MAGICLINE).json()["content"]
    expect(page.locator("#customers")).to_contain_text(qr)
    value.fill(qr)
    expect(house.get_by_role("combobox", name="Credential kind to present at House")).to_have_value("qr")
    present.click()
    expect(house.locator(".decision")).to_contain_text("Granted")


def test_what_is_typed_on_a_keypad_survives_a_push(page: Any, mock: RunningMock) -> None:
    expect = _open(page, mock)
    house = page.get_by_role("article", name="House")
    digits = house.get_by_role("textbox", name="Keypad digits at House")
    digits.click()
    page.keyboard.type("12")
    mock.client("control").post("/clock/advance", json={"seconds": 60}).raise_for_status()
    expect(page.locator("#clock-now")).to_have_text("2030-01-01 08:01:00 UTC")  # the page was redrawn meanwhile
    page.keyboard.type("34")
    expect(digits).to_have_value("1234")
    page.keyboard.press("Enter")
    expect(house.locator(".decision")).to_contain_text("Granted")


def test_the_clock_freezes_and_runs_from_the_page(page: Any, mock: RunningMock) -> None:
    expect = _open(page, mock)
    page.get_by_role("button", name="Unfreeze the clock").click()
    expect(page.locator("#clock-mode")).to_have_text("running")
    control = mock.client("control")
    assert control.get("/clock").json()["frozen"] is False
    page.get_by_role("button", name="Freeze the clock").click()
    expect(page.locator("#clock-mode")).to_have_text("frozen")
    assert control.get("/clock").json()["frozen"] is True


UNNAMED_CONTROLS = """() => [...document.querySelectorAll("button, input, select")]
    .filter((control) => !(control.getAttribute("aria-label") || control.labels?.length
        || (control.tagName === "BUTTON" && control.textContent.trim())))
    .map((control) => control.outerHTML)"""


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_every_control_is_named_and_the_page_fits_the_screen(
    page: Any, mock: RunningMock, width: int, height: int
) -> None:
    page.set_viewport_size({"width": width, "height": height})
    expect = _open(page, mock)
    expect(page.get_by_role("article")).to_have_count(3)
    assert page.evaluate(UNNAMED_CONTROLS) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "the page scrolls sideways"
    keypad = page.get_by_role("article", name="House").get_by_role("button", name="Key 5")
    box = keypad.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


def test_a_browser_opens_a_guarded_panel_with_the_token_once(page: Any, guarded: RunningMock) -> None:
    from playwright.sync_api import expect

    control = guarded.urls["control"]
    assert page.goto(control + "/panel").status == 401
    page.goto(f"{control}/panel?token={TOKEN}")
    assert page.url == control + "/panel"  # the token left the address (and the history)
    expect(page.locator("#connection")).to_have_text("live")
    house = page.get_by_role("article", name="House")
    house.get_by_role("textbox", name="Keypad digits at House").fill("1234")
    house.get_by_role("textbox", name="Keypad digits at House").press("Enter")
    expect(house.locator(".decision")).to_contain_text("Granted")
    page.reload()
    expect(page.locator("#connection")).to_have_text("live")
