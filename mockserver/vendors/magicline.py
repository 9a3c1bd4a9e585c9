"""Magicline Open API, customer access (openapi/magicline.yaml): API keys with scopes, `ErrorResponse` bodies in
the caller's language, offset/sliceSize paging."""

from __future__ import annotations

import base64
import functools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connexion import NoContent
from connexion.lifecycle import ConnexionRequest

from ..contracts import load_contract
from ..domain.errors import Conflict, DomainError, Invalid, NotAllowed, NotFound, Unauthenticated
from ..domain.model import AccessMedium, Customer
from ..http.context import context
from ..http.errors import ApiError, FieldError
from ..http.security import Revision, security_map
from ..http.vendor import Vendor
from . import _context

STUDIO_ZONE = ZoneInfo("Europe/Berlin")

# (english, german) message templates
MESSAGES = {
    "unauthorized": (
        "No api-key, wrong api-key or wrong header name.",
        "Kein API-Key, falscher API-Key oder falscher Header-Name.",
    ),
    "scope": ("The api-key lacks the scope {scope}.", "Dem API-Key fehlt der Scope {scope}."),
    "not_found_route": (
        "The requested resource does not exist.",
        "Die angeforderte Ressource existiert nicht.",
    ),
    "not_found": ("{entity} {ident} does not exist.", "{entity_de} {ident} existiert nicht."),
    "not_allowed": (
        "Only access mediums created through the API may be changed or removed.",
        "Nur über die API angelegte Zugangsmedien dürfen geändert oder gelöscht werden.",
    ),
    "invalid": ("Invalid value for {field}: {reason}.", "Ungültiger Wert für {field}: {reason_de}."),
    "invalid_body": (
        "The request body is not valid: {reason}.",
        "Der Anfrageinhalt ist ungültig: {reason_de}.",
    ),
    "duplicate": (
        "The value is already used by another access medium of this studio.",
        "Der Wert wird bereits von einem anderen Zugangsmedium dieses Studios verwendet.",
    ),
    "conflict": (
        "The entity was modified by another request.",
        "Die Entität wurde von einer anderen Anfrage geändert.",
    ),
    "rate_limit": (
        "Access denied - rate limit is exceeded.",
        "Zugriff verweigert - Ratenlimit überschritten.",
    ),
    "method": (
        "The method {method} is not supported for this resource.",
        "Die Methode {method} wird für diese Ressource nicht unterstützt.",
    ),
    "internal": ("Unexpected system error.", "Unerwarteter Systemfehler."),
    "unavailable": (
        "The service is temporarily unavailable.",
        "Der Dienst ist vorübergehend nicht verfügbar.",
    ),
    "bad_request": ("The request is not valid.", "Die Anfrage ist ungültig."),
}

ENTITY_DE = {"Customer": "Kunde", "Access medium": "Zugangsmedium"}

# why a value was refused, per JSON Schema keyword: (english, german)
REASONS = {
    "required": ("it is required", "Pflichtfeld fehlt"),
    "type": ("it has the wrong type", "falscher Typ"),
    "minimum": ("it must be at least {constraint}", "muss mindestens {constraint} sein"),
    "maximum": ("it must be at most {constraint}", "darf höchstens {constraint} sein"),
    "minLength": ("it must not be empty", "darf nicht leer sein"),
    "maxLength": (
        "it must have at most {constraint} characters",
        "darf höchstens {constraint} Zeichen haben",
    ),
    "enum": ("it must be one of {constraint}", "muss einer der Werte {constraint} sein"),
    "pattern": ("it has the wrong format", "falsches Format"),
    "json": ("it is not valid JSON", "kein gültiges JSON"),
    "mediaType": ("the content type is not supported", "der Inhaltstyp wird nicht unterstützt"),
    "maxBytes": ("it is too large", "zu groß"),
}


def _german(request: ConnexionRequest) -> bool:
    header = request.headers.get("accept-language", "")
    first = header.split(",", 1)[0].strip().lower()
    return first.startswith("de")


def _message(request: ConnexionRequest, key: str, **values: Any) -> str:
    english, german = MESSAGES[key]
    return (german if _german(request) else english).format(**values)


class MagiclineVendor(Vendor):
    name = "magicline"
    prefix = "/magicline"

    def __init__(self, **parts: Any) -> None:
        super().__init__(**parts)
        self._scopes = {
            operation.operation_id: list(operation.required_scopes)
            for operation in load_contract("magicline").operations.values()
        }
        self._trace = 6453219806443214000

    def security_map(self, revision: Revision | None) -> dict[str, type]:
        return security_map(api_key=self.verify_api_key, revision=revision)

    def tenant(self, token_info: dict[str, Any] | None) -> str | None:
        return None if token_info is None else str(token_info["studio_id"])

    def intercept(self, method: str, path: str, headers: dict[bytes, bytes]) -> int | None:
        # HEAD on any path only checks the key: no routing, no validation, no business logic.
        if method != "HEAD":
            return None
        key = headers.get(b"x-api-key", b"").decode("latin-1")
        return 200 if key and self.building.api_key(key) is not None else 401

    def error(
        self,
        status: int,
        code: str,
        message: str,
        reference: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiError:
        self._trace += 1
        body: dict[str, Any] = {"errorMessage": message, "errorCode": code, "traceId": str(self._trace)}
        if reference:
            body["reference"] = reference
        return ApiError(status, body, headers=headers)

    def verify_api_key(self, request: ConnexionRequest, key: str, scheme: dict[str, Any]) -> dict[str, Any]:
        data = self.building.api_key(key)
        if data is None:
            raise self.unauthenticated(request)
        for scope in self._scopes.get(context().operation_id or "", []):
            if scope not in data["scopes"]:
                raise self.error(403, "FORBIDDEN", _message(request, "scope", scope=scope))
        return {
            "sub": data["studio_id"],
            "studio_id": data["studio_id"],
            "scopes": data["scopes"],
            "key": key,
        }

    def invalid(self, request: ConnexionRequest, error: FieldError, operation_id: str | None) -> ApiError:
        english, german = REASONS.get(error.rule, ("it is not valid", "ungültig"))
        constraint = error.constraint
        values = {
            "reason": english.format(constraint=constraint),
            "reason_de": german.format(constraint=constraint),
        }
        if error.field is None:
            return self.error(400, "VALIDATION_ERROR", _message(request, "invalid_body", **values))
        return self.error(
            400,
            "VALIDATION_ERROR",
            _message(request, "invalid", field=error.field, **values),
            reference=error.field,
        )

    def unauthenticated(self, request: ConnexionRequest) -> ApiError:
        return self.error(401, "UNAUTHORIZED", _message(request, "unauthorized"))

    def forbidden(self, request: ConnexionRequest, message: str) -> ApiError:
        return self.error(403, "FORBIDDEN", message or _message(request, "not_allowed"))

    def not_found(self, request: ConnexionRequest, message: str) -> ApiError:
        return self.error(404, "ENTITY_NOT_FOUND", _message(request, "not_found_route"))

    def method_not_allowed(self, request: ConnexionRequest, allowed: str) -> ApiError:
        return self.error(
            405,
            "METHOD_NOT_ALLOWED",
            _message(request, "method", method=request.method),
            headers={"Allow": allowed},
        )

    def domain_error(self, request: ConnexionRequest, error: DomainError, operation_id: str | None) -> ApiError:
        if isinstance(error, NotFound):
            message = _message(
                request,
                "not_found",
                entity=error.entity,
                ident=error.ident,
                entity_de=ENTITY_DE.get(error.entity, error.entity),
            )
            return self.error(404, "ENTITY_NOT_FOUND", message, reference=error.field)
        if isinstance(error, NotAllowed):
            return self.error(403, "FORBIDDEN", _message(request, "not_allowed"), reference=error.field)
        if isinstance(error, Conflict):
            return self.error(409, "CONCURRENT_MODIFICATION", _message(request, "conflict"))
        if isinstance(error, Unauthenticated):
            return self.unauthenticated(request)
        if isinstance(error, Invalid) and error.field == "value":
            return self.error(400, "DUPLICATE_VALUE", _message(request, "duplicate"), reference="value")
        return self.error(400, "VALIDATION_ERROR", error.message, reference=error.field)

    def rate_limited(self, request: ConnexionRequest, retry_after: int) -> ApiError:
        return self.error(429, "RATE_LIMIT_EXCEEDED", _message(request, "rate_limit"))

    def status(self, request: ConnexionRequest, status: int, operation_id: str | None) -> ApiError:
        simple = {
            400: ("VALIDATION_ERROR", "bad_request"),
            401: ("UNAUTHORIZED", "unauthorized"),
            403: ("FORBIDDEN", "not_allowed"),
            404: ("ENTITY_NOT_FOUND", "not_found_route"),
            409: ("CONCURRENT_MODIFICATION", "conflict"),
            429: ("RATE_LIMIT_EXCEEDED", "rate_limit"),
            503: ("SERVICE_UNAVAILABLE", "unavailable"),
        }
        code, key = simple.get(status, ("INTERNAL_ERROR", "internal"))
        return self.error(status, code, _message(request, key))

    async def limit(self, request: ConnexionRequest, operation_id: str, token_info: dict[str, Any] | None) -> None:
        if token_info is None:
            return
        wait = await self.limiter.hit(
            ("magicline", token_info["key"], operation_id),
            limit=self.settings.magicline_rate_limit_per_minute,
            window=60,
            now=self.clock.timestamp(),
            aligned=True,
        )
        if wait:
            raise self.rate_limited(request, wait)


# ---------------------------------------------------------------------------------------------- rendering


def _card_number(value: str, card_format: str | None) -> str:
    if card_format in (None, "DECIMAL") or not value.isdigit():
        return value
    number = int(value)
    msb = f"{number:X}"
    if len(msb) % 2:
        msb = "0" + msb
    if card_format == "HEX_MSB":
        return msb
    return bytes.fromhex(msb)[::-1].hex().upper()


def medium_json(medium: AccessMedium) -> dict[str, Any]:
    return medium.public()


def customer_json(customer: Customer, card_format: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": customer.id,
        "customerNumber": customer.customer_number,
        "firstName": customer.first_name,
        "lastName": customer.last_name,
        "dateOfBirth": customer.date_of_birth,
        "email": customer.email,
        "gender": customer.gender,
        "status": customer.status,
        "accessRefusal": customer.access_refusal,
        "uuid": customer.uuid,
        "studioId": customer.studio_id,
        "accessMediums": [medium_json(m) for m in customer.mediums],
        "cardNumbers": [_card_number(m.value, card_format) for m in customer.mediums if m.type == "CARD_NUMBER"],
    }
    if customer.created_at is not None:
        created = datetime.fromtimestamp(customer.created_at, UTC).astimezone(STUDIO_ZONE)
        data["createdDateTime"] = created.isoformat(timespec="milliseconds") + "[Europe/Berlin]"
    return {key: value for key, value in data.items() if value is not None}


def _studio_id() -> int:
    return _context.principal()["studio_id"]


# ---------------------------------------------------------------------------------------------- handlers


async def getCustomers(
    offset: str | None = None,
    sliceSize: int = 100,
    customerStatus: str | None = None,
    lastOffsetId: int | None = None,
    cardNumberFormat: str | None = None,
) -> tuple[dict[str, Any], int]:
    runtime = _context.runtime()
    opaque = runtime.choices.value("magicline.offset") == "opaque"
    after = lastOffsetId if offset is None else _read_cursor(offset) if opaque else int(offset)
    customers, has_next = runtime.building.customers(_studio_id(), after=after, limit=sliceSize, status=customerStatus)
    last = customers[-1].id if customers else (after or 0)
    next_offset = _cursor(last) if opaque else str(last)
    _context.fresh_until()
    return {
        "result": [customer_json(c, cardNumberFormat) for c in customers],
        "offset": next_offset,
        "hasNext": has_next,
    }, 200


#: what an opaque cursor holds before it is encoded (`magicline.offset=opaque`)
_CURSOR_PREFIX = "after:"


def _cursor(customer_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{customer_id}".encode()).decode().rstrip("=")


def _read_cursor(text: str) -> int:
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        if not decoded.startswith(_CURSOR_PREFIX):
            raise ValueError(decoded)
        value = int(decoded.removeprefix(_CURSOR_PREFIX))
        if value < 0:
            raise ValueError(decoded)
        return value
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("offset is not a cursor this service gave out", field="offset") from exc


async def getCustomerById(customerId: int, cardNumberFormat: str | None = None) -> tuple[dict[str, Any], int]:
    customer = _context.runtime().building.customer(_studio_id(), customerId)
    _context.fresh_until()
    return customer_json(customer, cardNumberFormat), 200


@functools.lru_cache(maxsize=4096)
def _utc_seconds(epoch: float) -> str:
    # A QR code is fetched many times before it expires; its expiry is formatted once.
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def getCustomerAccessCode(customerId: int) -> tuple[dict[str, Any], int]:
    customer = _context.runtime().building.customer_access_code(_studio_id(), customerId)
    assert customer.qr_expires_at is not None
    expires = _utc_seconds(customer.qr_expires_at)
    _context.fresh_until(customer.qr_expires_at)  # then a fresh code replaces it
    return {"format": "QR_CODE", "expiresAt": expires, "content": customer.qr_content}, 200


async def addAccessMediums(customerId: int, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    medium = _context.runtime().building.add_medium(_studio_id(), customerId, body["type"], body["value"])
    return medium_json(medium), 200


async def addAccessMedium(customerId: int, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    return await addAccessMediums(customerId, body)


async def updateAccessMediums(customerId: int, accessMediumId: int, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    medium = _context.runtime().building.update_medium(_studio_id(), customerId, accessMediumId, body["value"])
    return medium_json(medium), 200


async def deleteAccessMediums(customerId: int, accessMediumId: int) -> tuple[Any, int]:
    _context.runtime().building.delete_medium(_studio_id(), customerId, accessMediumId)
    return NoContent, 200


async def _key_checked(**_path: Any) -> tuple[Any, int]:
    # HEAD only checks the key, which the security handler has done by now.
    return NoContent, 200


checkKeyCustomers = checkKeyCustomer = checkKeyAccessCode = _key_checked
checkKeyAccessMediums = checkKeyAccessMedium = checkKeyAccessMediumLegacy = _key_checked
