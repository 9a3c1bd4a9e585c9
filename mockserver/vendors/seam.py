"""Seam-compatible intercom device cloud (openapi/seam.yaml): OAuth for the owner's consent, then intercoms,
doors and access codes; errors are `{error_id, error_message}`."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode, urlsplit

from connexion.lifecycle import ConnexionRequest
from starlette.responses import HTMLResponse, RedirectResponse

from ..domain.errors import DeviceOffline, DomainError, Invalid, NotFound, Unauthenticated
from ..domain.model import AccessCode, Intercom
from ..http.errors import ApiError, FieldError
from ..http.security import Revision, security_map
from ..http.vendor import Vendor
from . import _context

SEAM_REDIRECT_SUFFIX = ".integrations.getseam.com"
CLIENT_ID = "seam"
CLIENT_SECRET = "seamsecret"

#: the documented error of each operation that reaches the door
DOOR_ERRORS = {"unlockIntercom": "INTERCOM_DISCONNECTED", "deleteAccessCode": "ACCESS_CODE_REMOVAL_FAILED"}


def error(status: int, error_id: str, message: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(status, {"error_id": error_id, "error_message": message}, headers=headers)


class SeamVendor(Vendor):
    name = "seam"
    prefix = "/seam"

    def security_map(self, revision: Revision | None) -> dict[str, type]:
        return security_map(bearer=self.verify_bearer, revision=revision)

    def tenant(self, token_info: dict[str, Any] | None) -> str | None:
        return None if token_info is None else token_info["owner_id"]

    def verify_bearer(self, request: ConnexionRequest, token: str, scheme: dict[str, Any]) -> dict[str, Any]:
        owner = self.building.user_for_token("seam", token)
        if owner is None:
            raise self.unauthenticated(request)
        return {"sub": owner.id, "user_id": owner.id, "owner_id": owner.uuid}

    def invalid(self, request: ConnexionRequest, error_: FieldError, operation_id: str | None) -> ApiError:
        if any(v.field == "redirect_uri" and v.rule != "required" for v in getattr(error_, "violations", [error_])):
            # The contract's pattern is the rule of allowed addresses; refusing one has its own error id.
            return _refuse_redirect()
        where = error_.field or "body"
        return error(400, "INVALID_INPUT", f"{where}: {error_.message}")

    def unauthenticated(self, request: ConnexionRequest) -> ApiError:
        return error(401, "UNAUTHORIZED", "Missing or invalid access token")

    def forbidden(self, request: ConnexionRequest, message: str) -> ApiError:
        return error(403, "FORBIDDEN", message or "Forbidden")

    def not_found(self, request: ConnexionRequest, message: str) -> ApiError:
        return error(404, "NOT_FOUND", message)

    def method_not_allowed(self, request: ConnexionRequest, allowed: str) -> ApiError:
        return error(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here", headers={"Allow": allowed})

    def domain_error(self, request: ConnexionRequest, error_: DomainError, operation_id: str | None) -> ApiError:
        if isinstance(error_, NotFound):
            if self.choices.value("seam.foreign_status") == "forbidden":
                return error(403, "FORBIDDEN", "The intercom or access code is not one of the owner's")
            if error_.field == "access_code_id":
                return error(404, "ACCESS_CODE_NOT_FOUND", "Access code not found")
            return error(404, "INTERCOM_NOT_FOUND", "Intercom not found")
        if isinstance(error_, DeviceOffline):
            error_id = DOOR_ERRORS.get(operation_id or "", "INTERCOM_DISCONNECTED")
            return error(500, error_id, error_.message)
        if isinstance(error_, Unauthenticated):
            return self.unauthenticated(request)
        if isinstance(error_, Invalid) and error_.field == "code" and operation_id == "exchangeToken":
            return error(400, "INVALID_GRANT", error_.message)
        return error(400, "INVALID_INPUT", error_.message)

    def rate_limited(self, request: ConnexionRequest, retry_after: int) -> ApiError:
        return error(429, "RATE_LIMITED", "Too many requests", headers={"Retry-After": str(retry_after)})

    def status(self, request: ConnexionRequest, status: int, operation_id: str | None) -> ApiError:
        if status == 500:
            return error(500, DOOR_ERRORS.get(operation_id or "", "INTERNAL_ERROR"), "Unexpected Server Error")
        if operation_id == "authorizeLogin" and status == 401:
            # The login form answers a refused sign-in with the page again, as HTML.
            return ApiError(401, _login_page("", None, "Wrong email or password.", self.prefix), media_type="text/html")
        ids = {400: "INVALID_INPUT", 401: "UNAUTHORIZED", 404: "NOT_FOUND", 503: "SERVICE_UNAVAILABLE"}
        return error(status, ids.get(status, "ERROR"), "Injected failure")

    # --- OAuth

    def redirect_allowed(self, uri: str) -> bool:
        parts = urlsplit(uri)
        host = (parts.hostname or "").lower()
        if parts.scheme == "https" and host.endswith(SEAM_REDIRECT_SUFFIX):
            return True
        extra = [h.lower().lstrip(".") for h in self.settings.seam_allowed_redirect_hosts]
        return parts.scheme in ("http", "https") and any(host == h or host.endswith("." + h) for h in extra)


def _vendor() -> SeamVendor:
    vendor = _context.runtime().vendors["seam"]
    assert isinstance(vendor, SeamVendor)
    return vendor


def _owner_id() -> int:
    return _context.principal()["user_id"]


def intercom_json(intercom: Intercom) -> dict[str, Any]:
    return {
        "intercom_id": intercom.uuid,
        "name": intercom.title,
        "model": intercom.model,
        "address": intercom.address,
    }


def code_json(code: AccessCode, intercom: Intercom) -> dict[str, Any]:
    return {
        "access_code_id": code.uuid,
        "intercom_id": intercom.uuid,
        "owner_id": code.owner_uuid,
        "code": code.digits,
        "name": code.title,
    }


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to connect your intercoms</title></head>
<body>
<h1>Sign in</h1>
<p>Seam asks to manage your intercoms' doors and access codes.</p>
{message}
<form method="post" action="{action}">
  <label>Email <input type="text" name="email" autocomplete="username"></label><br>
  <label>Password <input type="password" name="password" autocomplete="current-password"></label><br>
  <input type="hidden" name="redirect_uri" value="{redirect_uri}">
  <input type="hidden" name="state" value="{state}">
  <button type="submit">Sign in</button>
</form>
</body></html>
"""


def _login_page(redirect_uri: str, state: str | None, message: str = "", prefix: str | None = None) -> str:
    action = f"{prefix if prefix is not None else _vendor().prefix}/authorize"
    note = f'<p role="alert">{html.escape(message)}</p>' if message else ""
    return LOGIN_PAGE.format(
        message=note,
        action=html.escape(action),
        redirect_uri=html.escape(redirect_uri),
        state=html.escape(state or ""),
    )


def _refuse_redirect() -> ApiError:
    return error(400, "INVALID_REDIRECT_URI", "redirect_uri must be an https address under integrations.getseam.com")


# ---------------------------------------------------------------------------------------------- handlers


async def authorizePage(
    redirect_uri: str,
    state: str | None = None,
    client_id: str | None = None,
    response_type: str | None = None,
) -> HTMLResponse:
    if not _vendor().redirect_allowed(redirect_uri):
        raise _refuse_redirect()
    return HTMLResponse(_login_page(redirect_uri, state))


async def authorizeLogin(body: dict[str, Any]) -> Any:
    redirect_uri = body["redirect_uri"]
    if not _vendor().redirect_allowed(redirect_uri):
        raise _refuse_redirect()
    building = _context.runtime().building
    try:
        owner = building.owner_by_credentials(body["email"], body["password"])
    except Unauthenticated:
        return HTMLResponse(_login_page(redirect_uri, body.get("state"), "Wrong email or password."), status_code=401)
    code = building.create_oauth_code(owner.id, redirect_uri)
    query = {"code": code, **({"state": body["state"]} if body.get("state") else {})}
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(query)}", status_code=302)


async def exchangeToken(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    if body["client_id"] != CLIENT_ID or body["client_secret"] != CLIENT_SECRET:
        raise error(401, "INVALID_CLIENT", "Unknown client or wrong client secret")
    token = _context.runtime().building.exchange_oauth_code(body["code"])
    return {"access_token": token}, 200


async def listIntercoms() -> tuple[dict[str, Any], int]:
    intercoms = _context.runtime().building.owner_intercoms(_owner_id())
    _context.fresh_until()
    return {"intercoms": [intercom_json(i) for i in intercoms]}, 200


async def getIntercom(intercom_id: str) -> tuple[dict[str, Any], int]:
    intercom = _context.runtime().building.owner_intercom(_owner_id(), intercom_uuid=intercom_id)
    _context.fresh_until()
    return intercom_json(intercom), 200


#: the longest unlock the mock takes when `seam.unlock_time` lifts the contract's bound (about 31 years)
LONGEST_UNLOCK_MS = 10**12


def _unlock_ms(value: Any, choice: str) -> int:
    """The unlock time in milliseconds. Under the default choice the contract has already checked it; under the
    others the rules are the choice's own (`mockserver.choices`)."""
    text = str(value).strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.isascii() and text.isdigit():
        text = int(text)
    if isinstance(text, bool) or not isinstance(text, int) or text < 0:
        raise error(400, "INVALID_INPUT", "unlock_time: must be a number of milliseconds")
    if choice == "positive" and text == 0:
        raise error(400, "INVALID_INPUT", "unlock_time: must be at least 1 millisecond")
    if text > LONGEST_UNLOCK_MS:
        raise error(400, "INVALID_INPUT", f"unlock_time: must be at most {LONGEST_UNLOCK_MS} milliseconds")
    return text


async def unlockIntercom(intercom_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    runtime = _context.runtime()
    unlock_ms = _unlock_ms(body["unlock_time"], runtime.choices.value("seam.unlock_time"))
    intercom = runtime.building.owner_intercom(_owner_id(), intercom_uuid=intercom_id)
    runtime.building.unlock(intercom, unlock_ms, by="seam")
    return {"ok": True}, 200


async def listAccessCodes(intercom_id: str) -> tuple[dict[str, Any], int]:
    intercom, codes = _context.runtime().building.owner_intercom_codes(_owner_id(), intercom_id)
    _context.fresh_until()
    return {"access_codes": [code_json(c, intercom) for c in codes]}, 200


async def getAccessCode(access_code_id: str) -> tuple[dict[str, Any], int]:
    building = _context.runtime().building
    code = building.owner_code(_owner_id(), access_code_id)
    code, intercom = building.code_with_intercom(code.id)
    _context.fresh_until()
    return code_json(code, intercom), 200


async def deleteAccessCode(access_code_id: str) -> tuple[dict[str, Any], int]:
    _context.runtime().building.remove_owner_code(_owner_id(), access_code_id)
    return {"ok": True}, 200


async def health() -> tuple[dict[str, Any], int]:
    if _context.runtime().choices.value("seam.health_auth") == "bearer":
        _context.require_bearer("seam")
    return {"ok": True}, 200
