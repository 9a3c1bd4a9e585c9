"""AIPIX VMS client API (openapi/vms.yaml): Laravel's bodies, paginator and validation messages."""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from connexion import NoContent
from connexion.lifecycle import ConnexionRequest

from ..contracts import load_contract
from ..domain.errors import (
    DeviceOffline,
    DomainError,
    Invalid,
    NotFound,
    TooManySessions,
    Unauthenticated,
)
from ..domain.events import (
    AccessDecided,
    CodeCreated,
    CodesDeleted,
    ConnectivityChanged,
    DoorLocked,
    DoorUnlocked,
    Event,
)
from ..domain.model import AccessCode, Intercom, Owner
from ..http.errors import ApiError, FieldError
from ..http.security import Revision, security_map
from ..http.vendor import Vendor
from ..push import PusherHub
from . import _context

if TYPE_CHECKING:
    from ..choices import ChoiceBoard
    from ..domain.building import Building
    from ..push import Pushes

WSURL_WINDOW_SECONDS = 300


# ---------------------------------------------------------------------------------------------- rendering


@functools.lru_cache(maxsize=65_536)
def _ymd_his_cached(epoch: int) -> str:
    parts = time.gmtime(epoch)
    return (
        f"{parts.tm_year:04d}-{parts.tm_mon:02d}-{parts.tm_mday:02d} "
        f"{parts.tm_hour:02d}:{parts.tm_min:02d}:{parts.tm_sec:02d}"
    )


def _ymd_his(epoch: float | None) -> str | None:
    # Codes share their timestamps a lot (a list page renders four per code), so each second is formatted once.
    return None if epoch is None else _ymd_his_cached(int(epoch))


@functools.lru_cache(maxsize=4096)
def _iso_micro(epoch_us: int) -> str:
    parts = time.gmtime(epoch_us // 1_000_000)
    return (
        f"{parts.tm_year:04d}-{parts.tm_mon:02d}-{parts.tm_mday:02d}T"
        f"{parts.tm_hour:02d}:{parts.tm_min:02d}:{parts.tm_sec:02d}.{epoch_us % 1_000_000:06d}Z"
    )


def intercom_json(intercom: Intercom, created_at_form: str = "ymd_his") -> dict[str, Any]:
    """An intercom as VMS shows it; ``created_at_form`` is the `vms.intercom_created_at` choice."""
    if created_at_form == "ymd_his" or intercom.created_at is None:
        created_at = _ymd_his(intercom.created_at)
    elif created_at_form == "iso_micro":
        created_at = _iso_micro(int(intercom.created_at * 1_000_000))
    else:
        created_at = None
    return {
        "id": intercom.id,
        "title": intercom.title,
        "is_online": intercom.online,
        "department": intercom.department,
        "address": intercom.address,
        "created_at": created_at,
        "updated_at": _iso_micro(intercom.updated_at),
    }


def code_json(
    code: AccessCode,
    intercom: Intercom,
    now: float,
    *,
    intercom_view: dict[str, Any] | None = None,
    created_at_form: str = "ymd_his",
) -> dict[str, Any]:
    """A code as VMS shows it; ``intercom_view`` is its intercom already rendered (a list page shares one)."""
    return {
        "id": code.id,
        "title": code.title,
        "code": code.digits,
        "expired_at": _ymd_his(code.expired_at),
        "is_expired": code.is_expired(now),
        "will_deleted_at": _ymd_his(code.will_deleted_at),
        "created_at": _ymd_his(code.created_at),
        "intercom": intercom_view if intercom_view is not None else intercom_json(intercom, created_at_form),
    }


def user_json(owner: Owner, session_id: str) -> dict[str, Any]:
    return {
        "id": owner.id,
        "login": owner.login,
        "name": owner.name,
        "parent_id": None,
        "permissions": [],
        "created_at": _ymd_his(owner.created_at) or "",
        "updated_at": _ymd_his(owner.updated_at) or "",
        "access_token_id": session_id,
        "can_update_password": True,
        "analytic_license": [],
    }


def paginator(items: list[dict[str, Any]], *, total: int, page: int, per_page: int, path: str) -> dict[str, Any]:
    """Laravel's LengthAwarePaginator as an API resource collection, link window included."""
    last_page = max(1, math.ceil(total / per_page))

    def url(number: int) -> str:
        return f"{path}?page={number}"

    first_item = (page - 1) * per_page + 1 if items else None
    links = [{"url": url(page - 1) if page > 1 else None, "label": "pagination.previous", "active": False}]
    for element in _url_window(page, last_page):
        if element is None:
            links.append({"url": None, "label": "...", "active": False})
        else:
            links.append({"url": url(element), "label": str(element), "active": element == page})
    links.append({"url": url(page + 1) if page < last_page else None, "label": "pagination.next", "active": False})
    return {
        "data": items,
        "links": {
            "first": url(1),
            "last": url(last_page),
            "prev": url(page - 1) if page > 1 else None,
            "next": url(page + 1) if page < last_page else None,
        },
        "meta": {
            "current_page": page,
            "from": first_item,
            "last_page": last_page,
            "links": links,
            "path": path,
            "per_page": per_page,
            "to": first_item + len(items) - 1 if first_item is not None else None,
            "total": total,
        },
    }


def _url_window(page: int, last_page: int, on_each_side: int = 3) -> list[int | None]:
    """Laravel's UrlWindow: every page on short lists, else the ends plus a slider, with None for "..."."""
    if last_page < on_each_side * 2 + 8:
        return list(range(1, last_page + 1))
    window = on_each_side + 4
    start, finish = [1, 2], [last_page - 1, last_page]
    has_pages = page != 1 or page < last_page
    if not has_pages:
        return []
    if page <= window:
        return [*range(1, window + on_each_side + 1), None, *finish]
    if page > last_page - window:
        return [*start, None, *range(last_page - (window + (on_each_side - 1)), last_page + 1)]
    return [*start, None, *range(page - on_each_side, page + on_each_side + 1), None, *finish]


# ---------------------------------------------------------------------------------------------- errors

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "array": "an array",
    "object": "an array",
    "boolean": "true or false",
    "number": "a number",
}


def _attribute(field: str) -> str:
    return field.replace("_", " ") if "." not in field else field


def laravel_message(field: str, rule: str, constraint: Any) -> str:
    """The message Laravel's English validator would give for one failed rule."""
    name = _attribute(field)
    if rule == "required":
        return f"The {name} field is required."
    if rule == "type":
        expected = constraint[0] if isinstance(constraint, list) else constraint
        return f"The {name} field must be {_TYPE_WORDS.get(expected, expected)}."
    if rule == "maxLength":
        return f"The {name} field must not be greater than {constraint} characters."
    if rule == "minLength":
        return f"The {name} field must be at least {constraint} characters."
    if rule == "maximum":
        return f"The {name} field must not be greater than {constraint}."
    if rule == "minimum":
        return f"The {name} field must be at least {constraint}."
    if rule == "maxItems":
        return f"The {name} field must not have more than {constraint} items."
    if rule == "minItems":
        return f"The {name} field must have at least {constraint} items."
    if rule == "enum":
        return f"The selected {name} is invalid."
    if rule == "pattern" and field == "expired_at":
        return f"The {name} field must match the format Y-m-d H:i."
    return f"The {name} field format is invalid."


def validation_error(errors: dict[str, list[str]]) -> ApiError:
    messages = [m for ms in errors.values() for m in ms]
    message = messages[0]
    if len(messages) > 1:
        more = len(messages) - 1
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return ApiError(422, {"message": message, "errors": errors})


def _required_body_fields(operation_id: str | None) -> list[str]:
    return [] if operation_id is None else load_contract("vms").operation(operation_id).required_body_fields()


class VmsVendor(Vendor):
    name = "vms"
    prefix = "/vms"

    def security_map(self, revision: Revision | None) -> dict[str, type]:
        return security_map(bearer=self.verify_bearer, revision=revision)

    def tenant(self, token_info: dict[str, Any] | None) -> str | None:
        return None if token_info is None else str(token_info["user_id"])

    def verify_bearer(self, request: ConnexionRequest, token: str, scheme: dict[str, Any]) -> dict[str, Any]:
        owner = self.building.user_for_token("vms", token)
        if owner is None:
            raise self.unauthenticated(request)
        return {"sub": owner.id, "user_id": owner.id, "token": token}

    def invalid(self, request: ConnexionRequest, error: FieldError, operation_id: str | None) -> ApiError:
        violations = getattr(error, "violations", [error])
        for violation in violations:
            if violation.location == "path" and violation.field == "intercom":
                # Laravel binds {intercom} to a model: an id out of range is simply one no model has.
                ident = request.url.path.rstrip("/").split("/")[-2]
                return self.not_found(request, f"No query results for model [App\\Models\\Intercom] {ident}")
        errors: dict[str, list[str]] = {}
        for violation in violations:
            if violation.rule in ("json", "form") or (violation.field is None and violation.rule == "required"):
                # Laravel reads an unparsable or missing body as no input: every required field is missing.
                for name in _required_body_fields(operation_id) or ["body"]:
                    errors.setdefault(name, []).append(laravel_message(name, "required", None))
                continue
            if violation.rule == "maxBytes":
                errors.setdefault("body", []).append("The request body is too large.")
                continue
            field = violation.field or "body"
            if violation.location == "header":
                field = field.lower()
            if field in errors:
                continue  # Laravel stops at a field's first failing rule once it is blank or of the wrong type
            rule = violation.rule
            if (rule == "minLength" and violation.constraint == 1) or (
                rule == "pattern" and violation.constraint == "\\S"
            ):
                rule = "required"  # Laravel trims strings and turns empty ones into null: a blank is a missing value
            errors[field] = [laravel_message(field, rule, violation.constraint)]
        return validation_error(errors or {"body": ["The request is invalid."]})

    def unauthenticated(self, request: ConnexionRequest) -> ApiError:
        return ApiError(401, {"message": "Unauthenticated."})

    def forbidden(self, request: ConnexionRequest, message: str) -> ApiError:
        return ApiError(403, {"message": message or "This action is unauthorized."})

    def not_found(self, request: ConnexionRequest, message: str) -> ApiError:
        return ApiError(404, {"message": message})

    def method_not_allowed(self, request: ConnexionRequest, allowed: str) -> ApiError:
        path = request.url.path.removeprefix(self.prefix).lstrip("/")
        message = f"The {request.method} method is not supported for route {path}. Supported methods: {allowed}."
        return ApiError(405, {"message": message}, headers={"Allow": allowed})

    def domain_error(self, request: ConnexionRequest, error: DomainError, operation_id: str | None) -> ApiError:
        if isinstance(error, NotFound):
            entity = error.entity.replace(" ", "")
            return ApiError(404, {"message": f"No query results for model [App\\Models\\{entity}] {error.ident}"})
        if isinstance(error, TooManySessions):
            return ApiError(419, {"message": error.message, "session_id": error.session_id})
        if isinstance(error, DeviceOffline):
            return validation_error({"intercom": ["The intercom is offline."]})
        if isinstance(error, Unauthenticated):
            return self.unauthenticated(request)
        field = error.field or "request"
        message = error.message
        if isinstance(error, Invalid) and field == "expired_at":
            # Laravel words its `after:now` and `before:` rules "The expired at field must be a date ..."
            message = "The expired at field " + message.removeprefix("The expired at ")
        return validation_error({field: [message]})

    def rate_limited(self, request: ConnexionRequest, retry_after: int) -> ApiError:
        return ApiError(
            429,
            {"message": "Too Many Attempts."},
            headers={"Retry-After": str(retry_after), "X-RateLimit-Remaining": "0"},
        )

    def status(self, request: ConnexionRequest, status: int, operation_id: str | None) -> ApiError:
        if status == 401:
            return self.unauthenticated(request)
        if status == 403:
            return self.forbidden(request, "")
        if status == 404:
            return self.not_found(request, "Not Found")
        if status == 419:
            return ApiError(419, {"message": "Too many sessions.", "session_id": "0" * 80})
        if status == 422:
            return validation_error({"request": ["The request could not be processed."]})
        if status == 429:
            return self.rate_limited(request, 60)
        return ApiError(status, {"message": "Server Error"})

    async def limit(self, request: ConnexionRequest, operation_id: str, token_info: dict[str, Any] | None) -> None:
        if operation_id != "getWsUrl":
            return
        device = request.headers.get("x-uuid") or (request.client.host if request.client else "?")
        wait = await self.limiter.hit(
            ("vms", "wsurl", device),
            limit=self.settings.vms_wsurl_limit_per_5_minutes,
            window=WSURL_WINDOW_SECONDS,
            now=self.clock.timestamp(),
            aligned=False,
        )
        if wait:
            raise self.rate_limited(request, wait)


# ---------------------------------------------------------------------------------------------- handlers


def _user_id() -> int:
    return _context.principal()["user_id"]


def _socket_id() -> str | None:
    socket_id = _context.header("x-socket-id")
    return socket_id or None


async def login(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    building = _context.runtime().building
    owner, token, session_id = building.vms_login(
        body["login"].strip(), body["password"], session_id=(body.get("session_id") or None)
    )
    return {"user": user_json(owner, session_id), "access_token": f"Bearer {token}"}, 200


#: the largest integer PHP (and so Laravel's paginator) holds; also the most a JSON answer here can carry
PHP_INT_MAX = 2**63 - 1


def _positive(value: Any, fallback: int) -> int:
    """A page number or size as Laravel's paginator reads it: anything but a positive integer is the fallback,
    and a number past PHP's integer range is PHP_INT_MAX (as PHP casts it)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return fallback
    return min(number, PHP_INT_MAX) if number >= 1 else fallback


async def listCodes(page: Any = 1, per_page: Any = 25) -> tuple[dict[str, Any], int]:
    runtime = _context.runtime()
    choices = runtime.choices
    # Validation let another value through only when `vms.invalid_page` reads it as the paginator does.
    page, per_page = _positive(page, 1), _positive(per_page, 25)
    items, total = runtime.building.user_codes(
        _user_id(), page=page, per_page=per_page, newest_first=choices.value("vms.list_order") == "newest_first"
    )
    created_at_form = choices.value("vms.intercom_created_at")
    now = runtime.clock.timestamp()
    views: dict[int, dict[str, Any]] = {}
    data = []
    turns_expired = math.inf
    for code, intercom in items:
        view = views.get(intercom.id)
        if view is None:
            view = views[intercom.id] = intercom_json(intercom, created_at_form)
        data.append(code_json(code, intercom, now, intercom_view=view))
        if not code.is_expired(now):
            turns_expired = min(turns_expired, code.expired_at)
    _context.fresh_until(turns_expired)  # the page changes when one of its codes shows as expired
    path = f"{_context.base_url()}{VmsVendor.prefix}/api/v1/intercom/codes"
    return paginator(data, total=total, page=page, per_page=per_page, path=path), 200


#: "Y-m-d H:i" written the usual way: all digits present, one space
_EXPIRY = re.compile(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d)")


def _parse_expiry(text: str) -> datetime:
    found = _EXPIRY.fullmatch(text)
    if found is not None:
        try:
            # strptime would answer the same, in a tenth of the time (it compiles its rules per call)
            return datetime(*map(int, found.groups()), tzinfo=UTC)  # type: ignore[arg-type,misc]
        except ValueError:
            # The right shape, but no such day or time (2029-02-30): Laravel's `date` rule refuses it.
            raise validation_error({"expired_at": ["The expired at field must be a valid date."]}) from None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    except ValueError:
        raise validation_error({"expired_at": ["The expired at field must match the format Y-m-d H:i."]}) from None


async def createCode(intercom: int, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    runtime = _context.runtime()
    choices = runtime.choices
    expired_at = _parse_expiry(body["expired_at"])
    code, target = runtime.building.create_user_code(
        _user_id(),
        intercom,
        title=body["title"].strip(),
        expired_at=expired_at,
        origin=_socket_id(),
        allow_past=choices.value("vms.past_expiry") == "accept",
    )
    created_at_form = choices.value("vms.intercom_created_at")
    return code_json(code, target, runtime.clock.timestamp(), created_at_form=created_at_form), 200


async def deleteCodes(body: dict[str, Any]) -> tuple[Any, int]:
    runtime = _context.runtime()
    runtime.building.delete_user_codes(
        _user_id(),
        list(body["ids"]),
        origin=_socket_id(),
        ignore_foreign=runtime.choices.value("vms.bulk_delete_foreign") == "ignore",
    )
    return NoContent, 204


async def openDoor(intercom: int) -> tuple[Any, int]:
    building = _context.runtime().building
    target = building.owner_intercom(_user_id(), intercom_id=intercom)
    building.unlock(target, by="vms", detail={"user_id": _user_id()})
    return NoContent, 204


async def getWsUrl() -> tuple[dict[str, Any], int]:
    runtime = _context.runtime()
    if runtime.choices.value("vms.wsurl_auth") == "bearer":
        _context.require_bearer("vms")
    base = urlsplit(_context.base_url())
    encrypted = base.scheme == "https"
    port = base.port or (443 if encrypted else 80)
    path = f"{base.path.rstrip('/')}{VmsVendor.prefix}/ws"
    host = base.hostname or "127.0.0.1"
    ws_url = f"{'wss' if encrypted else 'ws'}://{base.netloc}{path}"
    return {
        "ws_url": ws_url,
        "app_key": runtime.pusher_app_key,
        "port": port,
        "host": host,
        "path": path,
        "is_encrypted": encrypted,
    }, 200


async def authorizeChannel(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    runtime = _context.runtime()
    channel = body["channel_name"]
    # A socket id of another form reaches here only when `limits` lets the contract's pattern go; nothing can be
    # signed for it.
    if channel != f"private-user.{_user_id()}" or not PusherHub.valid_socket_id(body["socket_id"]):
        raise ApiError(403, {"message": "This action is unauthorized."})
    return {"auth": runtime.hub.sign(body["socket_id"], channel)}, 200


# ---------------------------------------------------------------------------------------------- pushes

PUSH_EVENT = "App\\Events\\UserPush"


def push_subscriber(building: Building, pushes: Pushes, choices: ChoiceBoard) -> Callable[[Event], None]:
    """Turn building events into the pushes VMS sends on `private-user.{id}` (never back to the socket that
    made the change)."""

    def on_event(event: Event) -> None:
        if isinstance(event, CodeCreated) and event.user_id is not None:
            if not pushes.has_subscribers(f"private-user.{event.user_id}"):
                return
            code, intercom = building.created_code(event.code_id)
            payload = {
                "type": "intercom.code.store",
                "intercom_code": code_json(
                    code,
                    intercom,
                    event.at.timestamp(),
                    created_at_form=choices.value("vms.intercom_created_at"),
                ),
            }
            pushes.publish_nowait(
                f"private-user.{event.user_id}",
                PUSH_EVENT,
                payload,
                exclude_socket_id=_valid_socket(event.origin),
            )
        elif isinstance(event, CodesDeleted):
            for user_id, ids in event.by_user.items():
                if user_id is None or not pushes.has_subscribers(f"private-user.{user_id}"):
                    continue
                pushes.publish_nowait(
                    f"private-user.{user_id}",
                    PUSH_EVENT,
                    {"type": "intercom.code.delete", "deleted_ids": ids},
                    exclude_socket_id=_valid_socket(event.origin),
                )
        else:
            device_push(event)

    def device_push(event: Event) -> None:
        """Door and device events go to the intercom owner's channel, in the same envelope."""
        payload = _device_payload(event)
        if payload is None:
            return
        owner = building.intercom(payload["intercom_id"]).owner_id
        channel = f"private-user.{owner}"
        if pushes.has_subscribers(channel):
            pushes.publish_nowait(channel, PUSH_EVENT, payload)

    return on_event


def _device_payload(event: Any) -> dict[str, Any] | None:
    at = _ymd_his(event.at.timestamp())
    if isinstance(event, DoorUnlocked):
        return {
            "type": "intercom.door.unlocked",
            "intercom_id": event.intercom_id,
            "at": at,
            "until": _ymd_his(event.until.timestamp()),
            "by": event.by,
        }
    if isinstance(event, DoorLocked):
        return {"type": "intercom.door.locked", "intercom_id": event.intercom_id, "at": at}
    if isinstance(event, ConnectivityChanged):
        return {
            "type": f"intercom.device.{'online' if event.online else 'offline'}",
            "intercom_id": event.intercom_id,
            "at": at,
            "synced": event.synced,
        }
    if isinstance(event, AccessDecided):
        return {
            "type": f"intercom.access.{'granted' if event.granted else 'denied'}",
            "intercom_id": event.intercom_id,
            "at": at,
            "kind": event.kind,
            "reason": event.reason,
        }
    return None


def _valid_socket(socket_id: str | None) -> str | None:
    return socket_id if socket_id and PusherHub.valid_socket_id(socket_id) else None
