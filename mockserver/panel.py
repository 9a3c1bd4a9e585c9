"""The panel: a live page of the simulated building at `/_mock/panel` (openapi/control.yaml, tag `panel`).

The page (`static/panel.html`, `.js`, `.css`, every asset served from here) shows `panel_state`: each intercom
as the control API's `GET /intercoms/{intercom}` describes it, with its owner, its newest codes and its recent
device events, the simulated clock and the customers' credentials. What the page does goes through the control
API (`present`, `online`, `clock`), so the device rules live in the building only.

Live: `serve_live` is the page's websocket. It sends the state at once, then again each time `PanelFeed` (poked by
every domain event and clock move, see `create_app`) wakes it, after `GATHER_SECONDS` that gather a burst of events
into one message. Writes that publish no event (a snapshot restored, a QR code issued) are seen in the store's
revision, looked at every `LOOK_SECONDS`; a door that relocks or a code that expires while the clock runs, at the
moment the building names (`Building.next_change`). Replicas on one Redis store have no revision to look at: a page
follows what its own replica does, and the rest when it is reloaded.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import pathlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from .control import clock_json, device_json
from .domain.errors import NotFound
from .http.control_access import CONTROL_PREFIX, cookie_name
from .vendors import _context

if TYPE_CHECKING:
    from .domain.building import Building
    from .domain.clock import ManualClock
    from .domain.model import AccessCode
    from .runtime import Runtime

STATIC = pathlib.Path(__file__).parent / "static"
#: the page's assets by name, with their media types
ASSETS = {"panel.js": "text/javascript; charset=utf-8", "panel.css": "text/css; charset=utf-8"}
#: how much the page shows of what may be long (a load-test building holds 100,000 codes on one intercom)
CODES_SHOWN = 50
EVENTS_SHOWN = 10
CUSTOMERS_SHOWN = 50
#: the kind a customer's access medium is presented as at a device
MEDIUM_KINDS = {"CARD_NUMBER": "card", "PIN": "pin", "BARCODE": "barcode", "WALLET_PASS": "wallet_pass"}
GATHER_SECONDS = 0.05
LOOK_SECONDS = 0.5


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat()


# ---------------------------------------------------------------------------------------------- what it shows


def panel_state(runtime: Runtime) -> dict[str, Any]:
    """Everything the page shows, as `GET /_mock/panel/state` answers it (schema `PanelState`)."""
    building = runtime.building
    intercoms = building.intercoms()  # first: it brings time-driven changes up to the clock
    clock = clock_json(runtime)
    now = runtime.clock.timestamp()
    names = {owner.id: owner.name for owner in building.owners()}
    shown = []
    for intercom in intercoms:
        codes, total = building.newest_codes(intercom.id, CODES_SHOWN)
        shown.append(
            {
                **device_json(runtime, intercom),
                "owner_name": names.get(intercom.owner_id, ""),
                "codes": [_code_json(code, now) for code in codes],
                "codes_total": total,
                "events": building.device_log(intercom.id, EVENTS_SHOWN),
            }
        )
    customers, total = _customers(building)
    return {"clock": clock, "intercoms": shown, "customers": customers, "customers_total": total}


def _code_json(code: AccessCode, now: float) -> dict[str, Any]:
    return {
        "id": code.id,
        "access_code_id": code.uuid,
        "code": code.digits,
        "name": code.title,
        "expires_at": _iso(code.expired_at),
        "expired": code.is_expired(now),
    }


def _customers(building: Building) -> tuple[list[dict[str, Any]], int]:
    """The first customers of each studio with what they can present at a door; and how many there are."""
    found = []
    total = 0
    for studio, count in building.studios():
        total += count
        customers, _ = building.customers(studio.id, after=None, limit=CUSTOMERS_SHOWN)
        for customer in customers:
            credentials: list[dict[str, Any]] = [
                {"kind": MEDIUM_KINDS[medium.type], "value": medium.value} for medium in customer.mediums
            ]
            if customer.qr_content is not None and customer.qr_expires_at is not None:
                credentials.append(
                    {"kind": "qr", "value": customer.qr_content, "expires_at": _iso(customer.qr_expires_at)}
                )
            found.append(
                {
                    "customer_id": customer.id,
                    "name": f"{customer.first_name} {customer.last_name}",
                    "status": customer.status,
                    "studio_id": studio.id,
                    "studio": studio.name,
                    "credentials": credentials,
                }
            )
    return found, total


# ---------------------------------------------------------------------------------------------- the push channel


async def serve_live(websocket: WebSocket, runtime: Runtime) -> None:
    """The page's push channel: the state at once, then again whenever it may have changed, until the page leaves
    (or the server stops, which closes the socket). The page sends nothing."""
    await websocket.accept()
    store = runtime.building.store
    clock = runtime.clock
    sent = b""
    leaving = asyncio.ensure_future(websocket.receive())
    try:
        with runtime.panel.page() as woken:
            while True:
                woken.clear()
                message = orjson.dumps({"type": "state", "state": panel_state(runtime)})
                revision = store.revision
                due = runtime.building.next_change()
                if message != sent:
                    await websocket.send_text(message.decode())
                    sent = message
                while not woken.is_set() and store.revision == revision and not _passed(clock, due):
                    timeout = LOOK_SECONDS if clock.frozen else max(0.0, min(LOOK_SECONDS, due - clock.timestamp()))
                    waiting = asyncio.ensure_future(woken.wait())
                    await asyncio.wait({leaving, waiting}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                    waiting.cancel()
                    if leaving.done():
                        if leaving.result()["type"] == "websocket.disconnect":
                            return
                        leaving = asyncio.ensure_future(websocket.receive())  # the page said something: ignored
                await asyncio.sleep(GATHER_SECONDS)
    except (WebSocketDisconnect, OSError):  # the page left while a state was on its way
        return
    finally:
        leaving.cancel()


def _passed(clock: ManualClock, due: float) -> bool:
    """Whether a running clock is past the building's next deadline, so that settling now changes the building
    (past, not at: a code goes once the clock is beyond its deadline). A frozen clock moves only by a poke."""
    return not clock.frozen and clock.timestamp() > due


# ---------------------------------------------------------------------------------------------- HTTP (control.yaml)


@functools.cache
def _static(name: str) -> bytes:
    return (STATIC / name).read_bytes()


async def getPanel(token: str | None = None) -> Response:
    runtime = _context.runtime()
    if token is not None:
        # The token came in the address: keep it in a cookie (the middleware let the request in, but perhaps on an
        # older cookie, so it is compared here), and show the page at an address without it.
        response = RedirectResponse("panel", status_code=303, headers={"Cache-Control": "no-store"})
        expected = runtime.control_token
        if expected and hmac.compare_digest(token.encode(), expected.encode()):
            request = _context.request()
            secure = request.url.scheme == "https" or (runtime.public_url or "").startswith("https:")
            response.set_cookie(
                cookie_name(request.scope),
                token,
                path=CONTROL_PREFIX,
                httponly=True,
                samesite="strict",
                secure=secure,
            )
        return response
    return HTMLResponse(_static("panel.html"), headers={"Cache-Control": "no-cache"})


async def getPanelAsset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound("Asset", name, field="name")
    return Response(_static(name), media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})


async def getPanelState() -> tuple[dict[str, Any], int, dict[str, str]]:
    return panel_state(_context.runtime()), 200, {"Content-Type": "application/json"}


async def openPanelLive() -> tuple[dict[str, Any], int, dict[str, str]]:
    """A plain request for the push channel: it is a websocket."""
    problem = {
        "type": "about:blank",
        "title": "Upgrade Required",
        "status": 426,
        "detail": "The panel's push channel is a websocket: open it with a WebSocket client",
    }
    return problem, 426, {"Content-Type": "application/problem+json", "Upgrade": "websocket"}
