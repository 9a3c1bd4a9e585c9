"""Magicline Open API (customer access), in the manner of a Spring service: an API-key filter in front of
everything (HEAD stops there), URL-based scope checks, typed path variables, one error body for all failures."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from .web import NOT_JSON, Abort, Routes, read_body, route_path
from .world import MEDIUM_TYPES, ApiKey, Customer, Medium, World

routes = Routes()
READ, WRITE = "CUSTOMER_READ", "CUSTOMER_ACCESS_MEDIUM_WRITE"
QR_WINDOW_SECONDS = 300

# key: (errorCode, English, German); {0} is the first argument
MESSAGES = {
    "unauthorized": (
        "error.auth.unauthorized",
        "No api-key, wrong api-key or wrong header name.",
        "Kein API-Key, falscher API-Key oder falscher Header-Name.",
    ),
    "forbidden": (
        "error.auth.forbidden",
        "Authorization failed. The caller has no privilege to the given resource.",
        "Autorisierung fehlgeschlagen. Der Aufrufer hat keine Berechtigung für diese Ressource.",
    ),
    "not_found": ("error.notFound", "Entity does not exist.", "Die Entität existiert nicht."),
    "method": ("error.request.method", "Request method {0} is not supported.", "Methode {0} wird nicht unterstützt."),
    "customer": ("error.customer.notFound", "Customer {0} does not exist.", "Kunde {0} existiert nicht."),
    "medium": (
        "error.accessMedium.notFound",
        "Access medium {0} does not exist.",
        "Zugangsmedium {0} existiert nicht.",
    ),
    "locked": (
        "error.accessMedium.notModifiable",
        "Access medium {0} was not created through the API and cannot be changed.",
        "Zugangsmedium {0} wurde nicht über die API angelegt und kann nicht geändert werden.",
    ),
    "no_code": (
        "error.accessCode.notAvailable",
        "Customer {0} has no access code; only members have one.",
        "Kunde {0} hat keinen Zugangscode; nur Mitglieder haben einen.",
    ),
    "parameter": ("error.validation.parameter", "Invalid value for {0}.", "Ungültiger Wert für {0}."),
    "slice": (
        "error.validation.sliceSize",
        "sliceSize must be between 50 and 500.",
        "sliceSize muss zwischen 50 und 500 liegen.",
    ),
    "offset": ("error.validation.offset", "offset is not a valid cursor.", "offset ist kein gültiger Cursor."),
    "body": ("error.request.body", "The request body is not readable.", "Der Request-Body ist nicht lesbar."),
    "required": ("error.validation.required", "{0} is required.", "{0} ist ein Pflichtfeld."),
    "type": (
        "error.validation.accessMediumType",
        "type must be one of CARD_NUMBER, PIN, BARCODE, WALLET_PASS.",
        "type muss CARD_NUMBER, PIN, BARCODE oder WALLET_PASS sein.",
    ),
    "value": (
        "error.validation.accessMediumValue",
        "value must be a non-blank text of at most 255 characters.",
        "value muss ein nicht leerer Text mit höchstens 255 Zeichen sein.",
    ),
    "pin": ("error.validation.pin", "A PIN has 4 to 12 digits.", "Eine PIN hat 4 bis 12 Ziffern."),
    "duplicate": (
        "error.accessMedium.duplicate",
        "An access medium of this type with value {0} already exists.",
        "Ein Zugangsmedium dieses Typs mit dem Wert {0} existiert bereits.",
    ),
    "internal": ("error.internal", "Unexpected system error.", "Unerwarteter Systemfehler."),
}


def language(request: Request) -> int:
    """1 for German, 0 for English: the most preferred of the two in Accept-Language, English otherwise."""
    ranked = []
    for n, item in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, params = item.strip().partition(";")
        q = re.search(r"q=([0-9.]+)", params)
        try:
            weight = float(q[1]) if q else 1.0
        except ValueError:
            weight = 0.0
        ranked.append((-weight, n, tag.strip().lower().split("-")[0]))
    for _, _, primary in sorted(ranked):
        if primary in ("en", "de"):
            return 1 if primary == "de" else 0
    return 0


class Magicline:
    def __init__(self, world: World) -> None:
        self.world = world
        self.trace_ids = random.Random(world.rng.random())  # apart, so errors do not shift the building's ids

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            key = self.api_key(request)
            handler, params, allowed = routes.match(request.method, route_path(scope))
            if request.method == "HEAD":  # the gateway answers HEAD after the key check alone
                response = Response(status_code=200)
            elif handler is None and allowed:
                response = self.error(request, 405, "method", request.method).response
                response.headers["Allow"] = ", ".join(allowed)
            elif handler is None:
                raise self.error(request, 404, "not_found")
            else:
                response = await handler(self, request, key, **params)
        except Abort as abort:
            response = abort.response
        except Exception:
            response = self.error(request, 500, "internal").response
        await response(scope, receive, send)

    def error(self, request: Request, status: int, key: str, *args: Any, reference: str | None = None) -> Abort:
        code, *texts = MESSAGES[key]
        body: dict[str, Any] = {
            "errorMessage": texts[language(request)].format(*args),
            "errorCode": code,
            "traceId": f"{self.trace_ids.getrandbits(64):016x}",
        }
        if reference:
            body["reference"] = reference
        return Abort(JSONResponse(body, status))

    def api_key(self, request: Request) -> ApiKey:
        found = self.world.api_keys.get(request.headers.get("x-api-key", ""))
        if found is None:
            raise self.error(request, 401, "unauthorized")
        return found

    def require(self, request: Request, key: ApiKey, scope: str) -> None:
        if scope not in key.scopes:
            raise self.error(request, 403, "forbidden")

    def customer(self, request: Request, key: ApiKey, raw: str) -> Customer:
        customer_id = java_long(raw)
        if customer_id is None:
            raise self.error(request, 400, "parameter", "customerId", reference="customerId")
        customer = self.world.customers.get(customer_id)
        if customer is None or customer.studio != key.studio:  # another studio's customer does not exist here
            raise self.error(request, 404, "customer", customer_id)
        return customer

    def medium(self, request: Request, customer: Customer, raw: str) -> Medium:
        medium_id = java_long(raw)
        if medium_id is None:
            raise self.error(request, 400, "parameter", "accessMediumId", reference="accessMediumId")
        for medium in customer.mediums:
            if medium.id == medium_id:
                if not medium.by_api:
                    raise self.error(request, 403, "locked", medium_id)
                return medium
        raise self.error(request, 404, "medium", medium_id)

    async def body(self, request: Request) -> dict[str, Any]:
        body = await read_body(request)
        if body is NOT_JSON or not isinstance(body, dict):
            raise self.error(request, 400, "body")
        return body

    def value(self, request: Request, raw: Any, medium_type: str, studio: int, current: Medium | None = None) -> str:
        if raw is None:
            raise self.error(request, 400, "required", "value", reference="value")
        if not isinstance(raw, str | int | float):
            raise self.error(request, 400, "body", reference="value")
        text = raw if isinstance(raw, str) else json.dumps(raw)  # Jackson reads scalars as text
        if not text.strip() or len(text) > 255:
            raise self.error(request, 400, "value", reference="value")
        if medium_type == "PIN" and not re.fullmatch(r"\d{4,12}", text):
            raise self.error(request, 400, "pin", reference="value")
        for other in self.world.customer_mediums(studio):
            if other is not current and other.type == medium_type and other.value == text:
                raise self.error(request, 400, "duplicate", text, reference="value")
        return text


def java_long(text: str | None, bits: int = 64) -> int | None:
    if text is None or not re.fullmatch(r"[+-]?\d+", text.strip()):
        return None
    number = int(text.strip())
    return number if -(2 ** (bits - 1)) <= number < 2 ** (bits - 1) else None


def render_medium(medium: Medium) -> dict[str, Any]:
    return {"id": medium.id, "type": medium.type, "value": medium.value}


def render_customer(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "firstName": customer.first_name,
        "lastName": customer.last_name,
        "customerStatus": customer.status,
        "createdDateTime": customer.created_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "accessMediums": [render_medium(m) for m in customer.mediums],
    }


def sort_key(customer: Customer) -> list[Any]:
    return [customer.last_name, customer.first_name, customer.id]


def encode_cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any] | None:
    """The position after which the slice starts; None for the start. ValueError when it is no cursor of ours."""
    position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    if position == []:
        return None
    if not (isinstance(position, list) and len(position) == 3 and [type(p) for p in position] == [str, str, int]):
        raise ValueError(cursor)
    return position


@routes.add("GET", "/v1/customers")
async def list_customers(ml: Magicline, request: Request, key: ApiKey) -> Response:
    ml.require(request, key, READ)
    query = request.query_params
    size = java_long(query.get("sliceSize", "100"), bits=32)
    if size is None or not 50 <= size <= 500:
        raise ml.error(request, 400, "slice", reference="sliceSize")
    status = query.get("customerStatus")
    if status is not None and status not in ("MEMBER", "PROSPECT"):
        raise ml.error(request, 400, "parameter", "customerStatus", reference="customerStatus")
    offset = query.get("offset") or ""
    try:
        after = decode_cursor(offset) if offset else None
    except (ValueError, UnicodeDecodeError):
        raise ml.error(request, 400, "offset", reference="offset") from None
    # sorted by name, not by id; the cursor holds the last position handed out
    customers = sorted(
        (c for c in ml.world.customers.values() if c.studio == key.studio and status in (None, c.status)),
        key=sort_key,
    )
    if after is not None:
        customers = [c for c in customers if sort_key(c) > after]
    chunk = customers[:size]
    next_offset = encode_cursor(sort_key(chunk[-1])) if chunk else offset or encode_cursor([])
    return JSONResponse(
        {"result": [render_customer(c) for c in chunk], "offset": next_offset, "hasNext": len(customers) > size}
    )


@routes.add("GET", "/v1/customers/{customer_id}")
async def get_customer(ml: Magicline, request: Request, key: ApiKey, customer_id: str) -> Response:
    ml.require(request, key, READ)
    return JSONResponse(render_customer(ml.customer(request, key, customer_id)))


@routes.add("GET", "/v1/customers/{customer_id}/access-code")
async def access_code(ml: Magicline, request: Request, key: ApiKey, customer_id: str) -> Response:
    ml.require(request, key, READ)
    customer = ml.customer(request, key, customer_id)
    if customer.status != "MEMBER":
        raise ml.error(request, 404, "no_code", customer.id)
    # a rotating QR code: the content changes every window and says when it stops working
    window = int(ml.world.clock().timestamp()) // QR_WINDOW_SECONDS
    digest = hashlib.sha256(f"{customer.studio}:{customer.id}:{window}".encode()).digest()
    expires = datetime.fromtimestamp((window + 1) * QR_WINDOW_SECONDS, UTC)
    return JSONResponse(
        {
            "format": "QR_CODE",
            "content": f"{int.from_bytes(digest[:8]) % 10**19:019d}",
            "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )


@routes.add("POST", "/v1/customers/{customer_id}/access-mediums")
async def add_medium(ml: Magicline, request: Request, key: ApiKey, customer_id: str) -> Response:
    ml.require(request, key, WRITE)
    customer = ml.customer(request, key, customer_id)
    body = await ml.body(request)
    medium_type = body.get("type")
    if medium_type is None:
        raise ml.error(request, 400, "required", "type", reference="type")
    if medium_type not in MEDIUM_TYPES:
        raise ml.error(request, 400, "type", reference="type")
    value = ml.value(request, body.get("value"), medium_type, customer.studio)
    medium = Medium(ml.world.new_medium_id(), medium_type, value, by_api=True)  # a client-sent id is ignored
    customer.mediums.append(medium)
    return JSONResponse(render_medium(medium))


@routes.add("PUT", "/v1/customers/{customer_id}/access-mediums/{medium_id}")
async def change_medium(ml: Magicline, request: Request, key: ApiKey, customer_id: str, medium_id: str) -> Response:
    ml.require(request, key, WRITE)
    customer = ml.customer(request, key, customer_id)
    medium = ml.medium(request, customer, medium_id)
    body = await ml.body(request)
    medium.value = ml.value(request, body.get("value"), medium.type, customer.studio, current=medium)
    return JSONResponse(render_medium(medium))


@routes.add("DELETE", "/v1/customers/{customer_id}/access-mediums/{medium_id}")
async def remove_medium(ml: Magicline, request: Request, key: ApiKey, customer_id: str, medium_id: str) -> Response:
    ml.require(request, key, WRITE)
    customer = ml.customer(request, key, customer_id)
    customer.mediums.remove(ml.medium(request, customer, medium_id))
    return Response(status_code=200)
