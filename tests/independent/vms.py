"""AIPIX VMS client API, written the way a Laravel app behaves: Sanctum tokens, FormRequest-style 422s,
route model binding 404s, a LengthAwarePaginator, and Pusher broadcasting on `private-user.{id}`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from .web import Abort, Routes, php_int, read_body, route_path
from .world import Code, Intercom, Owner, World

routes = Routes()
WSURL_LIMIT, WSURL_WINDOW = 20, timedelta(minutes=5)


def laravel_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def iso_micro(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def render_intercom(intercom: Intercom) -> dict[str, Any]:
    # Laravel serialises both timestamps of a model alike
    return {
        "id": intercom.id,
        "title": intercom.title,
        "is_online": intercom.is_online,
        "department": intercom.department,
        "address": intercom.address,
        "created_at": iso_micro(intercom.created_at),
        "updated_at": iso_micro(intercom.updated_at),
    }


def render_code(world: World, code: Code) -> dict[str, Any]:
    return {
        "id": code.id,
        "title": code.title,
        "code": code.code,
        "expired_at": laravel_time(code.expired_at),
        "is_expired": code.expired_at <= world.clock(),
        "will_deleted_at": laravel_time(code.will_deleted_at),
        "created_at": laravel_time(code.created_at),
        "intercom": render_intercom(world.intercoms[code.intercom_id]),
    }


def invalid(errors: dict[str, list[str]]) -> Abort:
    messages = [m for field_messages in errors.values() for m in field_messages]
    more = len(messages) - 1
    summary = messages[0] + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")
    return Abort(JSONResponse({"message": summary, "errors": errors}, 422))


def page_links(current: int, last: int, url: Any) -> list[dict[str, Any]]:
    """meta.links as Laravel's UrlWindow draws them (three pages on each side of the current one)."""
    side = 3
    window = side + 4
    if last < side * 2 + 8:
        parts: list[Any] = [range(1, last + 1)]
    elif current <= window:
        parts = [range(1, window + side + 1), "...", range(last - 1, last + 1)]
    elif current > last - window:
        parts = [range(1, 3), "...", range(last - (window + side - 1), last + 1)]
    else:
        parts = [range(1, 3), "...", range(current - side, current + side + 1), "...", range(last - 1, last + 1)]
    links = [{"url": url(current - 1) if current > 1 else None, "label": "pagination.previous", "active": False}]
    for part in parts:
        if part == "...":
            links.append({"url": None, "label": "...", "active": False})
        else:
            links += [{"url": url(n), "label": str(n), "active": n == current} for n in part]
    links.append({"url": url(current + 1) if current < last else None, "label": "pagination.next", "active": False})
    return links


class Vms:
    def __init__(self, world: World, app_key: str = "vms-app-key", app_secret: str = "vms-app-secret") -> None:
        self.world = world
        self.pusher = Pusher(world, app_key, app_secret)
        self.wsurl_hits: dict[int, tuple[datetime, int]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.pusher.serve(WebSocket(scope, receive, send), route_path(scope))
            return
        request = Request(scope, receive)
        path = route_path(scope)
        handler, params, allowed = routes.match(request.method, path)
        try:
            if handler is None and allowed:
                allowed += ["HEAD"] if "GET" in allowed else []
                message = (
                    f"The {request.method} method is not supported for route {path.lstrip('/')}. "
                    f"Supported methods: {', '.join(allowed)}."
                )
                raise Abort(JSONResponse({"message": message}, 405, headers={"Allow": ", ".join(allowed)}))
            if handler is None:
                raise Abort(JSONResponse({"message": f"The route {path.lstrip('/')} could not be found."}, 404))
            response = await handler(self, request, **params)
        except Abort as abort:
            response = abort.response
        except Exception:
            response = JSONResponse({"message": "Server Error"}, 500)
        await response(scope, receive, send)

    def user(self, request: Request) -> Owner:
        # Sanctum reads whatever follows the last "Bearer " up to a comma
        header = request.headers.get("authorization", "")
        at = header.rfind("Bearer ")
        token = header[at + 7 :].split(",")[0] if at >= 0 else ""
        user_id = self.world.vms_tokens.get(token)
        if user_id is None:
            raise Abort(JSONResponse({"message": "Unauthenticated."}, 401))
        return self.world.owners[user_id]

    def intercom(self, owner: Owner, key: str) -> Intercom:
        """Route model binding scoped to the user's confirmed intercoms."""
        intercom = self.world.intercoms.get(php_int(key) or -1)
        if intercom is None or intercom.user_id != owner.user_id or not intercom.confirmed:
            raise Abort(JSONResponse({"message": f"No query results for model [App\\Models\\Intercom] {key}"}, 404))
        return intercom

    async def input(self, request: Request) -> dict[str, Any]:
        """Query and body merged, strings trimmed and empty ones null (Laravel's global middleware)."""
        data: dict[str, Any] = dict(request.query_params)
        body = await read_body(request)
        if isinstance(body, dict):
            data.update(body)
        for key, value in data.items():
            if isinstance(value, str) and key != "password":
                data[key] = value.strip() or None
        return data


def required_strings(data: dict[str, Any], fields: list[str], errors: dict[str, list[str]]) -> None:
    for name in fields:
        label = name.replace("_", " ")
        if data.get(name) is None:
            errors[name] = [f"The {label} field is required."]
        elif not isinstance(data[name], str):
            errors[name] = [f"The {label} field must be a string."]


@routes.add("POST", "/api/v1/token")
async def login(vms: Vms, request: Request) -> Response:
    data = await vms.input(request)
    errors: dict[str, list[str]] = {}
    required_strings(data, ["login", "password"], errors)
    if errors:
        raise invalid(errors)
    owner = vms.world.owner_by_login(data["login"], data["password"])
    if owner is None:
        raise invalid({"login": ["These credentials do not match our records."]})
    token_id, token = vms.world.issue_vms_token(owner.user_id)
    user = {"id": owner.user_id, "login": owner.login, "name": owner.name, "email": owner.email}
    return JSONResponse({"user": {**user, "access_token_id": token_id}, "access_token": f"Bearer {token}"})


@routes.add("GET", "/api/v1/intercom/codes")
async def list_codes(vms: Vms, request: Request) -> Response:
    owner = vms.user(request)
    data = await vms.input(request)
    per_page = 25
    if "per_page" in data:
        per_page = php_int(data["per_page"]) if data["per_page"] is not None else None
        if per_page is None:
            raise invalid({"per_page": ["The per page field must be an integer."]})
        if per_page < 1:
            raise invalid({"per_page": ["The per page field must be at least 1."]})
    page = php_int(data.get("page"))
    page = page if page is not None and page >= 1 else 1  # the paginator's own reading of `page`

    codes = [c for c in vms.world.live_codes() if c.user_id == owner.user_id]
    total, last = len(codes), max(math.ceil(len(codes) / per_page), 1)
    chunk = codes[(page - 1) * per_page : page * per_page]
    path = str(request.url.replace(query="", fragment=""))

    def url(n: int) -> str:
        return f"{path}?page={n}"

    first = (page - 1) * per_page + 1 if chunk else None
    return JSONResponse(
        {
            "data": [render_code(vms.world, c) for c in chunk],
            "links": {
                "first": url(1),
                "last": url(last),
                "prev": url(page - 1) if page > 1 else None,
                "next": url(page + 1) if page < last else None,
            },
            "meta": {
                "current_page": page,
                "from": first,
                "last_page": last,
                "links": page_links(page, last, url),
                "path": path,
                "per_page": per_page,
                "to": first + len(chunk) - 1 if first else None,
                "total": total,
            },
        }
    )


@routes.add("POST", "/api/v1/intercom/{intercom}/codes")
async def create_code(vms: Vms, request: Request, intercom: str) -> Response:
    owner = vms.user(request)
    target = vms.intercom(owner, intercom)
    data = await vms.input(request)
    errors: dict[str, list[str]] = {}
    required_strings(data, ["title", "expired_at"], errors)
    if "title" not in errors and len(data["title"]) > 255:
        errors["title"] = ["The title field must not be greater than 255 characters."]
    expired_at = None
    if "expired_at" not in errors:
        try:
            expired_at = datetime.strptime(data["expired_at"], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        except ValueError:
            expired_at = None
        if expired_at is None or expired_at.strftime("%Y-%m-%d %H:%M") != data["expired_at"]:
            errors["expired_at"] = ["The expired at field must match the format Y-m-d H:i."]
        elif expired_at <= vms.world.clock():
            errors["expired_at"] = ["The expired at field must be a date after now."]
    if errors or expired_at is None:
        raise invalid(errors)
    code = vms.world.create_code(target, data["title"], expired_at, origin=request.headers.get("x-socket-id"))
    return JSONResponse(render_code(vms.world, code))


@routes.add("DELETE", "/api/v1/intercom/codes")
async def delete_codes(vms: Vms, request: Request) -> Response:
    owner = vms.user(request)
    ids = (await vms.input(request)).get("ids")
    if isinstance(ids, dict):  # a JSON object is a PHP array too
        ids = list(ids.values())
    if ids is None or ids == []:
        raise invalid({"ids": ["The ids field is required."]})
    if not isinstance(ids, list):
        raise invalid({"ids": ["The ids field must be an array."]})
    if len(ids) > 200:
        raise invalid({"ids": ["The ids field must not have more than 200 items."]})
    numbers = [php_int(i) for i in ids]
    errors = {f"ids.{n}": [f"The ids.{n} field must be an integer."] for n, i in enumerate(numbers) if i is None}
    if errors:
        raise invalid(errors)
    # whereIn(ids)->where(user)->delete(): foreign and missing ids are silently skipped
    vms.world.delete_codes(owner.user_id, [i for i in numbers if i is not None], request.headers.get("x-socket-id"))
    return Response(status_code=204)


@routes.add("POST", "/api/v1/intercom/{intercom}/open-door")
async def open_door(vms: Vms, request: Request, intercom: str) -> Response:
    vms.intercom(vms.user(request), intercom)
    return Response(status_code=204)  # the command is queued for the device, online or not


@routes.add("GET", "/api/v1/wsurl")
async def wsurl(vms: Vms, request: Request) -> Response:
    owner = vms.user(request)
    now = vms.world.clock()
    started, hits = vms.wsurl_hits.get(owner.user_id, (now, 0))
    if now - started >= WSURL_WINDOW:
        started, hits = now, 0
    retry = max(int((started + WSURL_WINDOW - now).total_seconds()), 1)
    if hits >= WSURL_LIMIT:
        headers = {"Retry-After": str(retry), "X-RateLimit-Limit": str(WSURL_LIMIT), "X-RateLimit-Remaining": "0"}
        return JSONResponse({"message": "Too Many Attempts."}, 429, headers=headers)
    vms.wsurl_hits[owner.user_id] = (started, hits + 1)
    headers = {"X-RateLimit-Limit": str(WSURL_LIMIT), "X-RateLimit-Remaining": str(WSURL_LIMIT - hits - 1)}
    secure = request.url.scheme == "https"
    host, port = request.url.hostname or "localhost", request.url.port or (443 if secure else 80)
    root = request.scope.get("root_path", "")
    body = {
        "ws_url": f"{'wss' if secure else 'ws'}://{host}:{port}{root}/app/{vms.pusher.key}",
        "app_key": vms.pusher.key,
        "port": port,
        "host": host,
        "path": root,  # pusher-js's wsPath: it appends /app/{key} itself
        "is_encrypted": secure,
    }
    return JSONResponse(body, headers=headers)


@routes.add("GET", "/api/v1/broadcasting/auth")
@routes.add("POST", "/api/v1/broadcasting/auth")
async def broadcasting_auth(vms: Vms, request: Request) -> Response:
    owner = vms.user(request)
    data = await vms.input(request)
    socket_id, channel = data.get("socket_id"), data.get("channel_name")
    if (
        channel != f"private-user.{owner.user_id}"
        or not isinstance(socket_id, str)
        or not re.fullmatch(r"\d+\.\d+", socket_id)
    ):
        return JSONResponse({"message": ""}, 403)  # Laravel's bare AccessDeniedHttpException
    return JSONResponse({"auth": f"{vms.pusher.key}:{vms.pusher.signature(socket_id, channel)}"})


def frame(event: str, data: Any, channel: str | None = None) -> str:
    message: dict[str, Any] = {"event": event, "data": data}
    if channel is not None:
        message["channel"] = channel
    return json.dumps(message)


class Pusher:
    """A Pusher-protocol (version 7) socket server, just enough for pusher-js and Laravel Echo."""

    def __init__(self, world: World, key: str, secret: str) -> None:
        self.world, self.key, self.secret = world, key, secret
        self.sockets: dict[str, tuple[asyncio.Queue[str], set[str]]] = {}
        world.listeners.append(self.on_change)

    def signature(self, socket_id: str, channel: str) -> str:
        return hmac.new(self.secret.encode(), f"{socket_id}:{channel}".encode(), hashlib.sha256).hexdigest()

    def on_change(self, kind: str, user_id: int, subject: Any, origin: str | None) -> None:
        if kind == "store":
            payload = {"type": "intercom.code.store", "intercom_code": render_code(self.world, subject)}
        else:
            payload = {"type": "intercom.code.delete", "deleted_ids": subject}
        channel = f"private-user.{user_id}"
        message = frame("App\\Events\\UserPush", json.dumps(payload), channel)
        for socket_id, (queue, channels) in self.sockets.items():
            if socket_id != origin and channel in channels:
                queue.put_nowait(message)

    async def serve(self, websocket: WebSocket, path: str) -> None:
        found = re.fullmatch(r"/app/([^/]+)", path)
        if found is None:
            await websocket.close()
            return
        await websocket.accept()
        if found[1] != self.key:
            await websocket.send_text(frame("pusher:error", {"code": 4001, "message": f"App key {found[1]} not found"}))
            await websocket.close(4001)
            return
        socket_id = f"{self.world.rng.randrange(1, 10**9)}.{self.world.rng.randrange(1, 10**9)}"
        queue: asyncio.Queue[str] = asyncio.Queue()
        channels: set[str] = set()
        self.sockets[socket_id] = (queue, channels)
        queue.put_nowait(
            frame("pusher:connection_established", json.dumps({"socket_id": socket_id, "activity_timeout": 120}))
        )
        writer = asyncio.create_task(self._write(websocket, queue))
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text") or (message.get("bytes") or b"").decode("utf-8", "replace")
                for reply in self.reply(socket_id, channels, text):
                    queue.put_nowait(reply)
        finally:
            del self.sockets[socket_id]
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    @staticmethod
    async def _write(websocket: WebSocket, queue: asyncio.Queue[str]) -> None:
        with contextlib.suppress(Exception):
            while True:
                await websocket.send_text(await queue.get())

    def reply(self, socket_id: str, channels: set[str], text: str) -> list[str]:
        try:
            message = json.loads(text)
            event, data = message["event"], message.get("data") or {}
            if isinstance(data, str):
                data = json.loads(data)
        except (ValueError, KeyError, TypeError):
            return [frame("pusher:error", {"code": None, "message": "Invalid message: not a Pusher event"})]
        if event == "pusher:ping":
            return [frame("pusher:pong", {})]
        channel = data.get("channel") if isinstance(data, dict) else None
        if event == "pusher:unsubscribe" and isinstance(channel, str):
            channels.discard(channel)
        if event != "pusher:subscribe":
            return []
        if not isinstance(channel, str) or not channel:
            return [frame("pusher:error", {"code": None, "message": "Subscribe needs a channel"})]
        if channel.startswith(("private-", "presence-")):
            expected = f"{self.key}:{self.signature(socket_id, channel)}"
            auth = data.get("auth")
            if channel.startswith("presence-") or not (isinstance(auth, str) and hmac.compare_digest(auth, expected)):
                error = {"type": "AuthError", "error": f"Invalid signature for {channel}", "status": 401}
                return [frame("pusher:subscription_error", error, channel)]
        channels.add(channel)
        return [frame("pusher_internal:subscription_succeeded", "{}", channel)]
