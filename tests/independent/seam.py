"""The Seam-compatible device cloud, in the manner of a small Express service: a global bearer-token check
(OAuth routes excepted), JSON bodies, `{error_id, error_message}` on every failure, 404 for anything unrouted."""

from __future__ import annotations

import base64
import html
import math
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from .web import NOT_JSON, Abort, Routes, read_body, route_path
from .world import Code, Intercom, Owner, World

routes = Routes()
PUBLIC = {"/authorize", "/oauth/token"}
GRANT_LIFETIME = timedelta(minutes=10)
DEFAULT_UNLOCK_MS = 5000


def error(status: int, error_id: str, message: str) -> Abort:
    return Abort(JSONResponse({"error_id": error_id, "error_message": message}, status))


class Seam:
    def __init__(self, world: World) -> None:
        self.world = world

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        path = route_path(scope)
        try:
            owner = None if path in PUBLIC else self.owner(request)
            handler, params, _ = routes.match(request.method, path)
            if handler is None:  # unknown methods too: Express has no 405 of its own
                raise error(404, "NOT_FOUND", f"Cannot {request.method} {path}")
            response = await handler(self, request, owner, **params)
        except Abort as abort:
            response = abort.response
        except Exception:
            response = JSONResponse({"error_id": "INTERNAL_ERROR", "error_message": "Unexpected Server Error"}, 500)
        await response(scope, receive, send)

    def owner(self, request: Request) -> Owner:
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        user_id = self.world.seam_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user_id is None:
            raise error(401, "UNAUTHORIZED", "Missing or invalid access token")
        return self.world.owners[user_id]

    def intercom(self, owner: Owner, intercom_id: str) -> Intercom:
        for intercom in self.world.intercoms.values():
            if intercom.uuid == intercom_id and intercom.user_id == owner.user_id:
                return intercom
        raise error(404, "NOT_FOUND", f"Intercom {intercom_id} not found")

    def access_code(self, owner: Owner, access_code_id: str) -> Code:
        for code in self.world.live_codes():
            if code.uuid == access_code_id and code.user_id == owner.user_id:
                return code
        raise error(404, "NOT_FOUND", f"Access code {access_code_id} not found")

    def render_code(self, code: Code) -> dict[str, Any]:
        return {
            "access_code_id": code.uuid,
            "intercom_id": self.world.intercoms[code.intercom_id].uuid,
            "owner_id": self.world.owners[code.user_id].seam_id,
            "code": code.code,
            "name": code.title,
        }


def seam_redirect(uri: Any) -> str:
    """Only https pages on a subdomain of integrations.getseam.com may receive an authorization code."""
    parts = urlsplit(uri) if isinstance(uri, str) else None
    host = (parts.hostname or "") if parts else ""
    if parts is None or parts.scheme != "https" or not host.endswith(".integrations.getseam.com"):
        raise error(400, "INVALID_REDIRECT_URI", "redirect_uri must be an https URL on *.integrations.getseam.com")
    return str(uri)


def login_page(action: str, redirect_uri: str, state: str, problem: str = "", status: int = 200) -> HTMLResponse:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
        for name, value in (("redirect_uri", redirect_uri), ("state", state))
    )
    notice = f'<p class="error">{html.escape(problem)}</p>' if problem else ""
    return HTMLResponse(
        f"<!doctype html><html><head><title>Sign in</title></head><body><h1>Connect your intercoms to Seam</h1>"
        f'{notice}<form method="post" action="{html.escape(action)}">{hidden}'
        '<label>Login <input name="username" autocomplete="username"></label>'
        '<label>Password <input type="password" name="password"></label>'
        '<button type="submit">Sign in</button></form></body></html>',
        status,
    )


@routes.add("GET", "/authorize")
async def authorize_page(seam: Seam, request: Request, owner: None) -> Response:
    redirect_uri = seam_redirect(request.query_params.get("redirect_uri"))
    return login_page(request.url.path, redirect_uri, request.query_params.get("state", ""))


@routes.add("POST", "/authorize")
async def authorize_login(seam: Seam, request: Request, owner: None) -> Response:
    body = await read_body(request)
    form = body if isinstance(body, dict) else {}
    redirect_uri = seam_redirect(form.get("redirect_uri"))
    state = str(form.get("state") or "")
    found = seam.world.owner_by_login(str(form.get("username") or ""), str(form.get("password") or ""))
    if found is None:
        return login_page(request.url.path, redirect_uri, state, "Wrong login or password.", 401)
    grant = seam.world.secret(24)
    seam.world.seam_grants[grant] = (found.user_id, seam.world.clock() + GRANT_LIFETIME)
    parts = urlsplit(redirect_uri)
    extra = urlencode({"code": grant, **({"state": state} if state else {})})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return RedirectResponse(urlunsplit(parts._replace(query=query)), 302)


@routes.add("POST", "/oauth/token")
async def token(seam: Seam, request: Request, owner: None) -> Response:
    body = await read_body(request)
    if body is NOT_JSON or not isinstance(body, dict):
        raise error(400, "INVALID_REQUEST", "Body must be a JSON object or a form")
    client_id, client_secret = body.get("client_id"), body.get("client_secret")
    basic = request.headers.get("authorization", "")
    if client_id is None and basic.lower().startswith("basic "):  # client_secret_basic, as OAuth allows
        try:
            decoded = base64.b64decode(basic[6:].strip() + "==").decode("utf-8", "replace")
        except ValueError:
            decoded = ""
        client_id, _, client_secret = decoded.partition(":")
    if body.get("grant_type") not in (None, "authorization_code"):
        raise error(400, "UNSUPPORTED_GRANT_TYPE", "Only authorization_code is supported")
    if client_id != "seam" or client_secret != "seamsecret":
        raise error(401, "INVALID_CLIENT", "Unknown client or wrong client secret")
    code = body.get("code")
    if not isinstance(code, str) or not code:
        raise error(400, "INVALID_REQUEST", "code is required")
    user_id, expires = seam.world.seam_grants.pop(code, (None, None))  # single use
    if user_id is None or expires is None or expires <= seam.world.clock():
        raise error(400, "INVALID_GRANT", "The authorization code is invalid, used or expired")
    return JSONResponse({"access_token": seam.world.issue_seam_token(user_id), "token_type": "Bearer"})


@routes.add("GET", "/health")
async def health(seam: Seam, request: Request, owner: Owner) -> Response:
    return JSONResponse({"ok": True})


@routes.add("GET", "/door_locks")
async def list_intercoms(seam: Seam, request: Request, owner: Owner) -> Response:
    mine = [i for i in seam.world.intercoms.values() if i.user_id == owner.user_id]
    return JSONResponse({"intercoms": [render_intercom(i) for i in mine]})


def render_intercom(intercom: Intercom) -> dict[str, Any]:
    return {"intercom_id": intercom.uuid, "name": intercom.title, "model": intercom.model, "address": intercom.address}


@routes.add("GET", "/intercoms/{intercom_id}")
async def get_intercom(seam: Seam, request: Request, owner: Owner, intercom_id: str) -> Response:
    return JSONResponse(render_intercom(seam.intercom(owner, intercom_id)))


def unlock_ms(value: Any) -> float | None:
    """A positive millisecond count, as a number or a numeric string (like Node's Number())."""
    if value is None:
        return DEFAULT_UNLOCK_MS
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


@routes.add("POST", "/intercoms/{intercom_id}/unlock")
async def unlock(seam: Seam, request: Request, owner: Owner, intercom_id: str) -> Response:
    intercom = seam.intercom(owner, intercom_id)
    body = await read_body(request)
    if body is NOT_JSON or not isinstance(body, dict):
        raise error(400, "INVALID_REQUEST", "Body must be a JSON object")
    if unlock_ms(body.get("unlock_time")) is None:
        raise error(400, "INVALID_UNLOCK_TIME", "unlock_time must be a positive number of milliseconds")
    if not intercom.is_online:
        raise error(500, "INTERCOM_DISCONNECTED", f"Intercom {intercom.uuid} is offline")
    return JSONResponse({"ok": True})


@routes.add("GET", "/access_codes")
async def list_codes(seam: Seam, request: Request, owner: Owner) -> Response:
    wanted = request.query_params.get("intercom_id")
    codes = [c for c in seam.world.live_codes() if c.user_id == owner.user_id]
    if wanted is not None:  # without the filter, all of the owner's codes
        intercom = seam.intercom(owner, wanted)
        codes = [c for c in codes if c.intercom_id == intercom.id]
    return JSONResponse({"access_codes": [seam.render_code(c) for c in codes]})


@routes.add("GET", "/access_codes/{access_code_id}")
async def get_code(seam: Seam, request: Request, owner: Owner, access_code_id: str) -> Response:
    return JSONResponse(seam.render_code(seam.access_code(owner, access_code_id)))


@routes.add("DELETE", "/access_codes/{access_code_id}")
async def delete_code(seam: Seam, request: Request, owner: Owner, access_code_id: str) -> Response:
    code = seam.access_code(owner, access_code_id)
    if not seam.world.intercoms[code.intercom_id].is_online:
        raise error(500, "ACCESS_CODE_REMOVAL_FAILED", "The intercom cannot be reached; the code is still on it")
    seam.world.delete_codes(owner.user_id, [code.id])
    return JSONResponse({"ok": True})
