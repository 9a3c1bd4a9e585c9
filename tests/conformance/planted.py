"""Deliberately broken servers: the real mock wrapped in a small ASGI middleware that breaks one behaviour.

Each `Bug` names the checks that must catch it (`catches`: the suite must fail at least one of them) and may ask
for a setup on the mock (`setup`) and for target ids (`needs`). The same setup without the bug must pass, which
`test_planted.py` checks too.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx

from conformance.target import SCHEMATHESIS_PHASES

Scope = dict[str, Any]
PREFIXES = ("/vms", "/seam", "/magicline")
ALICE_VMS, BOB_VMS = "Bearer demo-vms-alice", "Bearer demo-vms-bob"
ALICE_SEAM, BOB_SEAM = "Bearer demo-seam-alice", "Bearer demo-seam-bob"
MISSION, HARBOUR, READONLY = "demo-magicline-mission", "demo-magicline-harbour", "demo-magicline-mission-readonly"


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def api(self) -> str:
        return next((p[1:] for p in PREFIXES if self.path.startswith(p + "/") or self.path == p), "")

    @property
    def route(self) -> str:
        return self.path[len(self.api) + 1 :] if self.api else self.path

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass
class Resp:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def set_json(self, value: Any) -> None:
        self.body = json.dumps(value).encode()
        self.headers = [(k, v) for k, v in self.headers if k != "content-type"] + [("content-type", "application/json")]


class Bug:
    """One broken behaviour. Override `request` (return a Resp to answer without the mock) and/or `response`."""

    api = ""
    catches: frozenset[str] = frozenset()
    needs: tuple[str, ...] = ()
    setup: Callable[[Any], dict[str, Any]] | None = None
    #: the building to start from (None: the demo building)
    fixtures: Callable[[], dict[str, Any]] | None = None
    #: the parts of a run holding a check that catches this bug (as `conformance run --stage/--phase` name them):
    #: the planted run is those parts alone, while the mock without a bug passes a whole run
    stages: tuple[str, ...] = ("scenarios",)
    phases: tuple[str, ...] = SCHEMATHESIS_PHASES

    def request(self, req: Req) -> Resp | None:
        return None

    def response(self, req: Req, resp: Resp) -> None:
        return None


class Planted:
    """ASGI middleware applying one bug around the mock."""

    def __init__(self, app: Any, bug: Bug) -> None:
        self.app = app
        self.bug = bug

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        req = Req(
            scope["method"],
            scope["path"],
            parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True),
            headers,
            b"".join(chunks),
        )
        untouched_query = {key: list(values) for key, values in req.query.items()}
        answer = self.bug.request(req) if req.api == self.bug.api else None
        if answer is None:
            answer = await self._forward(scope, req, receive, req.query != untouched_query)
            if req.api == self.bug.api:
                with contextlib.suppress(KeyError, TypeError, ValueError, IndexError, AttributeError):
                    # a bug that does not fit this answer (an error body, say) leaves it as the mock gave it
                    self.bug.response(req, answer)
        await self._send(send, answer)

    async def _forward(self, scope: Scope, req: Req, receive: Any, query_changed: bool) -> Resp:
        inner = dict(scope)
        if query_changed:  # re-encoding an untouched query could change it (repeated or odd keys)
            inner["query_string"] = urlencode(req.query, doseq=True).encode()
        inner["headers"] = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in req.headers.items() if k != "content-length"
        ] + [(b"content-length", str(len(req.body)).encode())]
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": req.body, "more_body": False}
            return await receive()

        resp = Resp(500)
        body: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                resp.status = message["status"]
                resp.headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in message["headers"]]
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        await self.app(inner, replay, capture)
        resp.body = b"".join(body)
        return resp

    async def _send(self, send: Any, resp: Resp) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers if k != "content-length"]
        headers.append((b"content-length", str(len(resp.body)).encode()))
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        await send({"type": "http.response.body", "body": resp.body})


def wrap(bug: Bug) -> Callable[[Any], Any]:
    return lambda app: Planted(app, bug)


# ---------------------------------------------------------------------------------------------- error bodies


class VmsErrorBody(Bug):
    """Errors (but 401) say `{"error": ...}` instead of Laravel's `{"message": ...}`."""

    api, catches = "vms", frozenset({"vms_error_body"})

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if resp.status >= 400 and resp.status != 401 and isinstance(body, dict):
            resp.set_json({"error": body.get("message")})


class SeamErrorBody(Bug):
    """Errors say `{"message": ...}` instead of `{error_id, error_message}`."""

    api, catches = "seam", frozenset({"seam_error_body"})

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if resp.status >= 400 and isinstance(body, dict) and "error_message" in body:
            resp.set_json({"message": body["error_message"]})


class MagiclineErrorBody(Bug):
    """Errors lose `errorMessage` (it is renamed `message`)."""

    api, catches = "magicline", frozenset({"magicline_error_body"})

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if resp.status >= 400 and isinstance(body, dict) and "errorMessage" in body:
            body["message"] = body.pop("errorMessage")
            resp.set_json(body)


class VmsValidationField(Bug):
    """A 422 keys its errors `field` instead of the field's name."""

    api, catches = "vms", frozenset({"vms_validation_fields"})

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if resp.status == 422 and isinstance(body, dict) and isinstance(body.get("errors"), dict):
            body["errors"] = {"field": [m for ms in body["errors"].values() for m in ms]}
            resp.set_json(body)


# ---------------------------------------------------------------------------------------------- fields


class VmsMissingField(Bug):
    """Listed codes lack their required `intercom`."""

    api, catches = "vms", frozenset({"response_schema_conformance"})
    stages, phases = ("schemathesis",), ("examples",)  # a generic check: Schemathesis' examples show it

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if req.route == "/api/v1/intercom/codes" and req.method == "GET" and isinstance(body, dict):
            for item in body.get("data") or []:
                item.pop("intercom", None)
            resp.set_json(body)


class SeamMissingField(Bug):
    """A read access code lacks its required `owner_id`."""

    api, catches = "seam", frozenset({"response_schema_conformance"})
    stages, phases = ("schemathesis",), ("examples",)  # a generic check: Schemathesis' examples show it

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if req.route.startswith("/access_codes/") and req.method == "GET" and isinstance(body, dict):
            body.pop("owner_id", None)
            resp.set_json(body)


class VmsCodeDigits(Bug):
    """Codes carry a letter."""

    api, catches = "vms", frozenset({"vms_code_digits"})

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if not isinstance(body, dict) or resp.status != 200:
            return
        for item in body.get("data") or ([body] if "code" in body else []):
            if isinstance(item, dict) and isinstance(item.get("code"), str):
                item["code"] = item["code"][:1] + "a" + item["code"][2:]
        resp.set_json(body)


class SeamHealth(Bug):
    """Health says `{"ok": false}`."""

    api, catches = "seam", frozenset({"seam_health"})

    def response(self, req: Req, resp: Resp) -> None:
        if req.route == "/health":
            resp.set_json({"ok": False})


class SeamGetMismatch(Bug):
    """Reading a code answers another name than the list."""

    api, catches = "seam", frozenset({"seam_get_matches_list"})

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if req.route.startswith("/access_codes/") and req.method == "GET" and isinstance(body, dict):
            body["name"] = f"{body.get('name', '')} (stale)"
            resp.set_json(body)


# ---------------------------------------------------------------------------------------------- paging


class VmsPagingTo(Bug):
    """`meta.to` is one too far."""

    api, catches = "vms", frozenset({"vms_paginator"})

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        listing = req.route == "/api/v1/intercom/codes" and req.method == "GET" and isinstance(body, dict)
        if listing and isinstance(body.get("meta", {}).get("to"), int):
            body["meta"]["to"] += 1
            resp.set_json(body)


class VmsPagingTotal(Bug):
    """`meta.total` counts one code too many."""

    api, catches = "vms", frozenset({"vms_paginator", "vms_paging"})

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if req.route == "/api/v1/intercom/codes" and req.method == "GET" and isinstance(body, dict):
            body["meta"]["total"] += 1
            resp.set_json(body)


class VmsPagingNext(Bug):
    """`links.next` is always null, and the window's next link too."""

    api, catches = "vms", frozenset({"vms_paginator", "vms_paging"})

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if req.route == "/api/v1/intercom/codes" and req.method == "GET" and isinstance(body, dict):
            body["links"]["next"] = None
            body["meta"]["links"][-1]["url"] = None
            resp.set_json(body)


def _many_customers() -> dict[str, Any]:
    """The demo building with 60 more customers in Mission Beach, so walking slices of 50 takes two."""
    from mockserver.app import load_fixtures

    data = load_fixtures(None)
    extra = [
        {"id": 5000 + n, "studio": 1238735970, "first_name": "Extra", "last_name": f"Member {n}", "status": "MEMBER"}
        for n in range(60)
    ]
    return {**data, "customers": [*data["customers"], *extra]}


class MagiclineOffset(Bug):
    """The answered `offset` is one before the slice's last customer (the next slice repeats it)."""

    api, catches = "magicline", frozenset({"magicline_slice", "magicline_paging"})
    fixtures = staticmethod(_many_customers)

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if req.route == "/v1/customers" and req.method == "GET" and isinstance(body, dict) and body.get("result"):
            body["offset"] = str(int(body["offset"]) - 1)
            resp.set_json(body)


# ---------------------------------------------------------------------------------------------- state


class VmsForgottenDelete(Bug):
    """Bulk delete answers 204 and deletes nothing."""

    api, catches, needs = "vms", frozenset({"vms_bulk_delete", "vms_codes_state"}), ("intercom_id",)

    def request(self, req: Req) -> Resp | None:
        body = req.json()
        if (
            req.route == "/api/v1/intercom/codes"
            and req.method == "DELETE"
            and isinstance(body, dict)
            and isinstance(body.get("ids"), list)
            and body["ids"]
            and "authorization" in req.headers
        ):
            return Resp(204)
        return None


class VmsBulkLimit(Bug):
    """Bulk delete takes more than 200 ids."""

    api, catches, needs = "vms", frozenset({"vms_bulk_delete"}), ("intercom_id",)

    def request(self, req: Req) -> Resp | None:
        body = req.json()
        if (
            req.route == "/api/v1/intercom/codes"
            and req.method == "DELETE"
            and isinstance(body, dict)
            and isinstance(body.get("ids"), list)
            and len(body["ids"]) > 200
        ):
            req.body = json.dumps({"ids": list(dict.fromkeys(body["ids"]))}).encode()
        return None


class VmsResurrected(Bug):
    """A deleted code comes back in the list once another code has been created."""

    api, catches, needs = "vms", frozenset({"vms_codes_state"}), ("intercom_id",)
    stages = ("scenarios", "machines")  # the state machine's new code brings back what the scenarios deleted

    def __init__(self) -> None:
        self.known: dict[Any, dict[str, Any]] = {}
        self.deleted: set[Any] = set()
        self.back: set[Any] = set()

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if req.method == "POST" and req.route.endswith("/codes") and resp.status == 200 and isinstance(body, dict):
            self.known[body["id"]] = body
            self.back |= self.deleted
        elif req.method == "DELETE" and resp.status == 204:
            self.deleted |= set((req.json() or {}).get("ids", []))
        elif (
            req.method == "GET"
            and req.route == "/api/v1/intercom/codes"
            and isinstance(body, dict)
            and (req.query.get("page", ["1"])[0] == "1")
        ):
            listed = {item.get("id") for item in body.get("data", [])}
            body["data"] = [self.known[i] for i in sorted(self.back - listed) if i in self.known] + body["data"]
            resp.set_json(body)


class SeamForgottenDelete(Bug):
    """Deleting a code answers `{"ok": true}` and keeps it."""

    api, catches, needs = "seam", frozenset({"seam_delete_sticks", "seam_codes_state"}), ("disposable_code_id",)

    def request(self, req: Req) -> Resp | None:
        if (
            req.method == "DELETE"
            and req.route.startswith("/access_codes/")
            and req.headers.get("authorization") == ALICE_SEAM
        ):
            resp = Resp(200)
            resp.set_json({"ok": True})
            return resp
        return None


class SeamResurrected(Bug):
    """A deleted code can still be read."""

    api, catches, needs = "seam", frozenset({"seam_delete_sticks", "seam_codes_state"}), ("disposable_code_id",)

    def __init__(self) -> None:
        self.cache: dict[str, Resp] = {}
        self.deleted: set[str] = set()

    def response(self, req: Req, resp: Resp) -> None:
        if not req.route.startswith("/access_codes/"):
            return
        ident = req.route.rsplit("/", 1)[-1]
        if req.method == "GET" and resp.status == 200:
            self.cache[ident] = Resp(resp.status, list(resp.headers), resp.body)
        elif req.method == "DELETE" and resp.status == 200:
            self.deleted.add(ident)
        elif req.method == "GET" and ident in self.deleted and ident in self.cache:
            cached = self.cache[ident]
            resp.status, resp.headers, resp.body = cached.status, list(cached.headers), cached.body


class MagiclineForgottenDelete(Bug):
    """Deleting a medium answers 200 and keeps it."""

    api, catches = "magicline", frozenset({"magicline_medium_lifecycle", "magicline_mediums_state"})
    needs = ("customer_id",)

    def request(self, req: Req) -> Resp | None:
        if req.method == "DELETE" and "/access-mediums/" in req.route and req.headers.get("x-api-key") == MISSION:
            return Resp(200)
        return None


class MagiclineMediumHidden(Bug):
    """Mediums added through the API do not show on the customer."""

    api, catches = "magicline", frozenset({"magicline_medium_lifecycle", "magicline_mediums_state"})
    needs = ("customer_id",)

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if req.method == "GET" and req.route.count("/") == 3 and isinstance(body, dict) and "accessMediums" in body:
            body["accessMediums"] = [m for m in body["accessMediums"] if m.get("id", 0) < 1_000_000]
            resp.set_json(body)


class SeamFilterLeak(Bug):
    """The list of one intercom also holds the codes of the owner's other intercoms."""

    api, catches = "seam", frozenset({"seam_list_filter"})
    OTHER = "3043fde0-3c6d-4913-981f-2607f05fe74e"

    def request(self, req: Req) -> Resp | None:
        if req.route == "/access_codes" and req.method == "GET" and req.query.get("intercom_id"):
            req.query["intercom_id"] = [self.OTHER]
        return None


# ---------------------------------------------------------------------------------------------- auth


class VmsAuthNotEnforced(Bug):
    """A missing or wrong token is taken as Alice's."""

    api, catches = "vms", frozenset({"vms_auth_enforced", "ignored_auth"})

    def request(self, req: Req) -> Resp | None:
        if req.headers.get("authorization") not in (ALICE_VMS, BOB_VMS) and not req.route.endswith("/token"):
            req.headers["authorization"] = ALICE_VMS
        return None


class SeamAuthNotEnforced(Bug):
    """A missing or wrong token is taken as Alice's."""

    api, catches = "seam", frozenset({"seam_auth_enforced", "ignored_auth"})

    def request(self, req: Req) -> Resp | None:
        if req.headers.get("authorization") not in (ALICE_SEAM, BOB_SEAM):
            req.headers["authorization"] = ALICE_SEAM
        return None


class MagiclineAuthNotEnforced(Bug):
    """A wrong key is taken as the studio's key."""

    api, catches = "magicline", frozenset({"magicline_auth_enforced", "ignored_auth"})

    def request(self, req: Req) -> Resp | None:
        if req.method != "HEAD" and req.headers.get("x-api-key") not in (MISSION, HARBOUR, READONLY):
            req.headers["x-api-key"] = MISSION
        return None


class MagiclineHeadNoKeyCheck(Bug):
    """HEAD answers 200 whatever the key."""

    api, catches = "magicline", frozenset({"magicline_head_checks_key", "ignored_auth"})

    def request(self, req: Req) -> Resp | None:
        return Resp(200) if req.method == "HEAD" else None


class MagiclineScopeNotEnforced(Bug):
    """The read-only key may write access mediums."""

    api, catches = "magicline", frozenset({"magicline_scope_enforced"})
    needs = ("customer_id", "limited_api_key")

    def request(self, req: Req) -> Resp | None:
        if req.headers.get("x-api-key") == READONLY and req.method in ("POST", "PUT", "DELETE"):
            req.headers["x-api-key"] = MISSION
        return None


# ---------------------------------------------------------------------------------------------- tenants


class VmsTenantLeak(Bug):
    """Bob's code list is Alice's (whatever token Bob logged in with)."""

    api, catches = "vms", frozenset({"vms_tenant_isolation"})

    def __init__(self) -> None:
        self.bobs = {BOB_VMS}

    def request(self, req: Req) -> Resp | None:
        if (
            req.method == "GET"
            and req.route == "/api/v1/intercom/codes"
            and req.headers.get("authorization") in self.bobs
        ):
            req.headers["authorization"] = ALICE_VMS
        return None

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if req.route == "/api/v1/token" and resp.status == 200 and body["user"]["login"].startswith("bob"):
            self.bobs.add(body["access_token"])


class SeamTenantLeak(Bug):
    """Bob can read Alice's intercoms."""

    api, catches = "seam", frozenset({"seam_tenant_isolation"})

    def request(self, req: Req) -> Resp | None:
        if req.method == "GET" and req.route.startswith("/intercoms/") and req.headers.get("authorization") == BOB_SEAM:
            req.headers["authorization"] = ALICE_SEAM
        return None


class MagiclineTenantLeak(Bug):
    """Harbour's key reads Mission Beach's customers."""

    api, catches = "magicline", frozenset({"magicline_tenant_isolation"})

    def request(self, req: Req) -> Resp | None:
        if req.method == "GET" and req.route.startswith("/v1/customers/") and req.headers.get("x-api-key") == HARBOUR:
            req.headers["x-api-key"] = MISSION
        return None


# ---------------------------------------------------------------------------------------------- expiry


def expired_code(mock: Any) -> dict[str, Any]:
    """Alice gets a code whose expiry has passed (the clock moves 10 minutes past it)."""
    minute = mock.clock.now().replace(second=0, microsecond=0)
    expires = (minute + timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M")
    answer = httpx.post(
        f"{mock.urls['vms']}/api/v1/intercom/180/codes",
        headers={"Authorization": ALICE_VMS, "X-Client": "web", "X-UUID": "planted"},
        json={"title": "expired visitor", "expired_at": expires},
    )
    answer.raise_for_status()
    mock.clock.advance(seconds=12 * 60)
    return {}


class VmsExpiryFlag(Bug):
    """`is_expired` stays false after expiry."""

    api, catches = "vms", frozenset({"vms_is_expired"})
    setup = staticmethod(expired_code)

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if isinstance(body, dict) and resp.status == 200:
            for item in body.get("data") or ([body] if "is_expired" in body else []):
                if isinstance(item, dict):
                    item["is_expired"] = False
            resp.set_json(body)


class VmsWillDeletedAt(Bug):
    """`will_deleted_at` is `expired_at` plus 12 hours, not 24."""

    api, catches = "vms", frozenset({"vms_will_deleted_at"})

    def response(self, req: Req, resp: Resp) -> None:
        body = resp.json()
        if not isinstance(body, dict) or resp.status != 200:
            return
        for item in body.get("data") or ([body] if "will_deleted_at" in body else []):
            if isinstance(item, dict) and isinstance(item.get("expired_at"), str):
                moment = datetime.strptime(item["expired_at"], "%Y-%m-%d %H:%M:%S") + timedelta(hours=12)
                item["will_deleted_at"] = moment.strftime("%Y-%m-%d %H:%M:%S")
        resp.set_json(body)


# ---------------------------------------------------------------------------------------------- pushes


class VmsPushToSender(Bug):
    """The device that made the change gets its own push (the server forgets `X-Socket-ID`)."""

    api, catches = "vms", frozenset({"vms_push"})

    def request(self, req: Req) -> Resp | None:
        req.headers.pop("x-socket-id", None)
        return None


def _drop_store_pushes(mock: Any) -> dict[str, Any]:
    """A hub that never sends `intercom.code.store` (the create's push is lost)."""
    hub = mock.runtime.hub
    publish = hub.publish_nowait

    def publish_nowait(channel: str, event: str, payload: Any, **kwargs: Any) -> Any:
        if isinstance(payload, dict) and payload.get("type") == "intercom.code.store":
            return None
        return publish(channel, event, payload, **kwargs)

    hub.publish_nowait = publish_nowait
    return {}


class VmsNoStorePush(Bug):
    """A created code is never pushed."""

    api, catches = "vms", frozenset({"vms_push"})
    setup = staticmethod(_drop_store_pushes)


BUGS: list[type[Bug]] = [
    VmsErrorBody,
    SeamErrorBody,
    MagiclineErrorBody,
    VmsValidationField,
    VmsMissingField,
    SeamMissingField,
    VmsCodeDigits,
    SeamHealth,
    SeamGetMismatch,
    VmsPagingTo,
    VmsPagingTotal,
    VmsPagingNext,
    MagiclineOffset,
    VmsForgottenDelete,
    VmsBulkLimit,
    VmsResurrected,
    SeamForgottenDelete,
    SeamResurrected,
    MagiclineForgottenDelete,
    MagiclineMediumHidden,
    SeamFilterLeak,
    VmsAuthNotEnforced,
    SeamAuthNotEnforced,
    MagiclineAuthNotEnforced,
    MagiclineHeadNoKeyCheck,
    MagiclineScopeNotEnforced,
    VmsTenantLeak,
    SeamTenantLeak,
    MagiclineTenantLeak,
    VmsExpiryFlag,
    VmsWillDeletedAt,
    VmsPushToSender,
    VmsNoStorePush,
]
