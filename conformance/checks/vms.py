"""AIPIX VMS: Laravel's error bodies, the visitor code's fields, the paginator, bulk delete and tenants."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from mockserver.contracts import load_contract

from ..failures import (
    AuthNotEnforced,
    ErrorBodyMismatch,
    FieldMismatch,
    PagingBroken,
    PushMismatch,
    StateMismatch,
    TenantLeak,
    ValidationFieldMissing,
)
from ..scenarios import ScenarioContext, ScenarioSkipped, scenario
from .common import Observation, laravel_page_problems, order_problem, raise_expiry, raise_paging, response_check
from .common import expiry_problems as _expiry_problems

API = "vms"
LIST = "/api/v1/intercom/codes"
#: the most ids one bulk delete takes (documented)
VMS_BULK_LIMIT = 200
UNAUTHENTICATED = {"message": "Unauthenticated."}
# Fields of a code that must read the same wherever the code is answered (is_expired moves with the clock).
STABLE_FIELDS = ("id", "title", "code", "expired_at", "will_deleted_at", "created_at")
MAX_PAGES = 200
#: what a 422 may name when the request body is not a JSON object
WHOLE_BODY_KEYS = frozenset({"body"})
#: request headers every operation has, so a 422 may name them
COMMON_HEADERS = frozenset({"content-type", "accept"})


def _codes_in(observation: Observation) -> list[dict[str, Any]]:
    body = observation.body
    if observation.status != 200 or not isinstance(body, dict):
        return []
    if observation.operation_id == "createCode":
        return [body]
    if observation.operation_id == "listCodes" and isinstance(body.get("data"), list):
        return [item for item in body["data"] if isinstance(item, dict)]
    return []


# ---------------------------------------------------------------------------------------------- response checks


@response_check(API)
def vms_error_body(observation: Observation) -> None:
    """Every error is Laravel's JSON body with a `message`."""
    if observation.status < 400 or observation.method == "HEAD":
        return
    body = observation.body
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        raise ErrorBodyMismatch(
            check="vms_error_body",
            operation=observation.label,
            message=f'HTTP {observation.status} body is not Laravel\'s {{"message": ...}}: '
            f"{observation.content[:200]!r}",
        )


@response_check(API)
def vms_unauthenticated_body(observation: Observation) -> None:
    """A 401 is exactly `{"message": "Unauthenticated."}`."""
    if observation.status == 401 and observation.body != UNAUTHENTICATED:
        raise ErrorBodyMismatch(
            check="vms_unauthenticated_body",
            operation=observation.label,
            message=f'401 body is {observation.content[:200]!r}, expected {{"message": "Unauthenticated."}}',
        )


def _parameter_fields(operation_id: str | None) -> set[str]:
    """The names a 422 may give the operation's path, query and header parameters (headers in lower case)."""
    operation = load_contract(API).operations.get(operation_id or "")
    if operation is None:
        return set()
    fields: set[str] = set(COMMON_HEADERS)
    for parameter in operation.parameters():
        name = parameter.get("name", "")
        fields.add(name.lower() if parameter.get("in") == "header" else name)
    return fields


def _known_fields(operation_id: str | None) -> set[str] | None:
    operation = load_contract(API).operations.get(operation_id or "")
    if operation is None:
        return None
    fields = _parameter_fields(operation_id)
    for media_type in operation.raw.get("requestBody", {}).get("content", {}):
        fields.update(operation.body_schema(media_type).get("properties", {}))
    return fields


def _required_body_fields(operation_id: str | None) -> list[str]:
    operation = load_contract(API).operations.get(operation_id or "")
    return operation.required_body_fields() if operation is not None else []


def _is_blank(value: Any) -> bool:
    # Laravel trims strings and turns empty ones into null: a blank field is a missing one.
    return value is None or (isinstance(value, str) and not value.strip())


@response_check(API)
def vms_validation_fields(observation: Observation) -> None:
    """A 422 names the offending fields in `errors`: only fields the request has, and a missing required field
    among them when one is missing."""
    if observation.status != 422 or not isinstance(observation.body, dict):
        return
    errors = observation.body.get("errors")
    if (
        not isinstance(errors, dict)
        or not errors
        or not all(isinstance(v, list) and v and all(isinstance(m, str) for m in v) for v in errors.values())
    ):
        raise ValidationFieldMissing(
            check="vms_validation_fields",
            operation=observation.label,
            message=f"422 without Laravel's `errors` {{field: [messages]}}: {observation.content[:200]!r}",
        )
    request = observation.request_body
    known = _known_fields(observation.operation_id)
    if known is not None:
        if not isinstance(request, dict):
            known = known | WHOLE_BODY_KEYS  # no field to name when the body is not an object at all
        strange = [key for key in errors if key.split(".")[0] not in known]
        if strange:
            raise ValidationFieldMissing(
                check="vms_validation_fields",
                operation=observation.label,
                message=f"422 names {strange}, which this operation does not have (it has {sorted(known)})",
            )
    if isinstance(request, dict):
        missing = [name for name in _required_body_fields(observation.operation_id) if _is_blank(request.get(name))]
        named = {key.split(".")[0] for key in errors}
        # Some servers stop at the first offending field: naming one of the missing ones is enough. One that
        # names a bad header or query parameter has stopped before the body (as Laravel's request middleware
        # and our mock do), so it owes no word about the body yet.
        if missing and not named & set(missing) and not named & _parameter_fields(observation.operation_id):
            raise ValidationFieldMissing(
                check="vms_validation_fields",
                operation=observation.label,
                message=f"the request lacks {missing}, but the 422 names only {sorted(errors)}",
            )


@response_check(API)
def vms_code_digits(observation: Observation) -> None:
    """A code's `code` is digits only."""
    wrong = [
        c.get("id")
        for c in _codes_in(observation)
        if not (isinstance(c.get("code"), str) and re.fullmatch(r"[0-9]+", c["code"]))
    ]
    if wrong:
        raise FieldMismatch(
            check="vms_code_digits",
            operation=observation.label,
            message=f"codes {wrong} have a `code` that is not digits only",
        )


@response_check(API)
def vms_will_deleted_at(observation: Observation) -> None:
    """`will_deleted_at` is `expired_at` plus 24 hours."""
    problems = [p for code in _codes_in(observation) for p in _expiry_problems(code, None)[0]]
    raise_expiry("vms_will_deleted_at", observation.label, problems)


@response_check(API)
def vms_is_expired(observation: Observation) -> None:
    """`is_expired` agrees with the server's own clock (its `Date` header), and no code outlives
    `will_deleted_at`."""
    now = observation.server_time
    listed = observation.operation_id == "listCodes"
    problems = [p for code in _codes_in(observation) for p in _expiry_problems(code, now, listed=listed)[1]]
    raise_expiry("vms_is_expired", observation.label, problems)


@response_check(API)
def vms_created_code_echo(observation: Observation) -> None:
    """A created code carries the title, expiry and intercom it was created with."""
    if observation.operation_id != "createCode" or observation.status != 200:
        return
    body, request = observation.body, observation.request_body
    if not isinstance(body, dict) or not isinstance(request, dict):
        return
    problems = []
    title = request.get("title")
    if isinstance(title, str) and body.get("title") != title.strip():
        problems.append(f"title is {body.get('title')!r}, the request sent {title!r}")
    expires = request.get("expired_at")
    if isinstance(expires, str) and body.get("expired_at") != f"{expires.strip()}:00":
        problems.append(f"expired_at is {body.get('expired_at')!r}, the request sent {expires!r}")
    intercom = body.get("intercom")
    wanted = observation.path_params.get("intercom")
    if isinstance(intercom, dict) and wanted is not None and str(intercom.get("id")) != str(wanted).strip():
        problems.append(f"intercom.id is {intercom.get('id')!r}, the code was created on intercom {wanted}")
    if problems:
        raise FieldMismatch(check="vms_created_code_echo", operation=observation.label, message="\n".join(problems))


def _int_query(query: dict[str, Any], name: str, default: int) -> int | None:
    """A positive integer query value, or None."""
    value = query.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 1 else None


@response_check(API)
def vms_paginator(observation: Observation) -> None:
    """One page of the list is a consistent Laravel paginator (counts, from/to, links, link window)."""
    if observation.operation_id != "listCodes" or observation.status != 200:
        return
    # Laravel's paginator reads a page or size that is not a positive integer as page 1 and the default size; a
    # server that refuses them instead never gets here.
    page, per_page = _int_query(observation.query, "page", 1) or 1, _int_query(observation.query, "per_page", 25) or 25
    raise_paging(
        "vms_paginator", observation.label, laravel_page_problems(observation.body, page=page, per_page=per_page)
    )


# ---------------------------------------------------------------------------------------------- helpers


def list_all(
    ctx: ScenarioContext, client: Any = None, *, per_page: int = 100, check: str | None = None
) -> list[dict[str, Any]]:
    """Every code the client's user has, walking the pages."""
    client = client or ctx.client
    codes: list[dict[str, Any]] = []
    page = 1
    while page <= MAX_PAGES:
        exchange = ctx.expect(
            client.get(LIST, params={"page": page, "per_page": per_page}), 200, why="listing codes", check=check
        )
        body = ctx.body(exchange, check=check)
        data = body.get("data") if isinstance(body.get("data"), list) else []
        codes += [item for item in data if isinstance(item, dict)]
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        given = meta.get("last_page")
        last = given if isinstance(given, int) else page
        if page >= last or not data:
            break
        page += 1
    return codes


def create_code(ctx: ScenarioContext, title: str, *, client: Any = None, check: str | None = None) -> dict[str, Any]:
    client = client or ctx.client
    exchange = client.post(
        f"/api/v1/intercom/{ctx.target.intercom_id}/codes",
        json_body={"title": title, "expired_at": ctx.session.policy.expiry_text()},
    )
    return ctx.body(ctx.expect(exchange, 200, why="creating a code on the test intercom", check=check), check=check)


def delete_codes(client: Any, ids: list[Any]) -> Any:
    return client.delete(LIST, json_body={"ids": ids})


def _by_id(codes: list[dict[str, Any]]) -> dict[Any, list[dict[str, Any]]]:
    index: dict[Any, list[dict[str, Any]]] = {}
    for code in codes:
        index.setdefault(code.get("id"), []).append(code)
    return index


def compare_listed(ctx: ScenarioContext, expected: dict[str, Any], listed: list[dict[str, Any]], check: str) -> None:
    """The code shows exactly once with the same fields it was created with."""
    found = _by_id(listed).get(expected["id"], [])
    if not found:
        raise ctx.fail(StateMismatch, f"code {expected['id']} was created but is not in the user's list", check=check)
    if len(found) > 1:
        raise ctx.fail(StateMismatch, f"code {expected['id']} is listed {len(found)} times", check=check)
    item = found[0]
    changed = [
        f"{name}: created {expected.get(name)!r}, listed {item.get(name)!r}"
        for name in STABLE_FIELDS
        if item.get(name) != expected.get(name)
    ]
    ours, theirs = expected.get("intercom") or {}, item.get("intercom") or {}
    if isinstance(ours, dict) and isinstance(theirs, dict) and ours.get("id") != theirs.get("id"):
        changed.append(f"intercom.id: created {ours.get('id')!r}, listed {theirs.get('id')!r}")
    if changed:
        raise ctx.fail(
            StateMismatch,
            f"code {expected['id']} is listed with other fields than it was created with:\n" + "\n".join(changed),
            check=check,
        )


# ---------------------------------------------------------------------------------------------- scenarios


@scenario(API)
def vms_login(ctx: ScenarioContext) -> None:
    """Logging in answers a bearer token; a login without password is refused naming `password`."""
    exchange = ctx.anonymous.post(
        "/api/v1/token", json_body={"login": ctx.target.credentials.login, "password": ctx.target.credentials.password}
    )
    body = ctx.body(ctx.expect(exchange, 200, why="logging in with the given credentials"))
    if not str(body.get("access_token", "")).startswith("Bearer "):
        raise ctx.fail(FieldMismatch, "access_token does not start with 'Bearer '", exchange=exchange)
    refused = ctx.anonymous.post("/api/v1/token", json_body={"login": ctx.target.credentials.login})
    errors = ctx.body(ctx.expect(refused, 422, why="logging in without a password")).get("errors")
    if not isinstance(errors, dict) or "password" not in errors:
        raise ctx.fail(ValidationFieldMissing, f"the 422 does not name `password`: {errors}", exchange=refused)


@scenario(API)
def vms_auth_enforced(ctx: ScenarioContext) -> None:
    """Without a token, or with a wrong one, every operation answers 401 and does nothing."""
    # No id that could be someone's real code: a server that ignores auth must not be able to delete anything.
    probes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", LIST, None),
        ("DELETE", LIST, {"ids": []}),
        ("POST", "/api/v1/broadcasting/auth", {"socket_id": "1.1", "channel_name": "private-user.1"}),
    ]
    if ctx.target.intercom_id is not None:
        probes.append(
            (
                "POST",
                f"/api/v1/intercom/{ctx.target.intercom_id}/codes",
                {"title": "conformance auth probe", "expired_at": ctx.session.policy.expiry_text()},
            )
        )
    for headers, what in (
        ({}, "no token"),
        ({"Authorization": "Bearer conformance-invalid-token"}, "a wrong token"),
        ({"Authorization": "conformance-invalid-token"}, "a token without 'Bearer '"),
    ):
        for method, path, body in probes:
            kwargs: dict[str, Any] = {"headers": headers}
            if body is not None:
                kwargs["json_body"] = body
            exchange = ctx.anonymous.request(method, path, **kwargs)
            if exchange.status != 401:
                raise ctx.fail(
                    AuthNotEnforced,
                    f"{method} {path} with {what} answered {exchange.status}, not 401",
                    exchange=exchange,
                )


@scenario(API, needs=("intercom_id",), writes=True)
def vms_created_code_listed(ctx: ScenarioContext) -> None:
    """A created code is listed once, with the fields it was created with."""
    created = create_code(ctx, "conformance listed")
    compare_listed(ctx, created, list_all(ctx), "vms_created_code_listed")


@scenario(API)
def vms_paging(ctx: ScenarioContext) -> None:
    """Walking every page: consistent totals and windows, no duplicates, no gaps (and the mock's order, where it
    chose one)."""
    if ctx.target.intercom_id is not None and not ctx.session.options.read_only:
        # Enough codes for several small pages.
        for index in range(max(0, 5 - len(list_all(ctx)))):
            create_code(ctx, f"conformance paging {index}")
    reference = list_all(ctx, per_page=100)
    per_page = 2
    seen: list[Any] = []
    first_total = None
    page, last_page = 1, 1
    while page <= min(last_page, MAX_PAGES):
        exchange = ctx.expect(
            ctx.client.get(LIST, params={"page": page, "per_page": per_page}), 200, why=f"reading page {page}"
        )
        body = ctx.body(exchange)
        meta = body.get("meta") or {}
        problems = laravel_page_problems(body, page=page, per_page=per_page)
        if first_total is None:
            first_total = meta.get("total")
        elif meta.get("total") != first_total:
            problems.append(f"meta.total changed from {first_total} to {meta.get('total')} between pages")
        if problems:
            raise ctx.fail(
                PagingBroken, f"page {page} (per_page {per_page}): " + "; ".join(problems), exchange=exchange
            )
        seen += [item.get("id") for item in body.get("data") or [] if isinstance(item, dict)]
        given = meta.get("last_page")
        last_page = given if isinstance(given, int) else page
        page += 1
    duplicates = sorted({i for i in seen if seen.count(i) > 1}, key=str)
    if duplicates:
        raise ctx.fail(PagingBroken, f"codes {duplicates} appear on more than one page")
    if first_total is not None and len(seen) != first_total:
        raise ctx.fail(PagingBroken, f"meta.total is {first_total} but the pages hold {len(seen)} codes")
    expected = [item.get("id") for item in reference]
    if sorted(seen, key=str) != sorted(expected, key=str):
        missing = sorted(set(expected) - set(seen), key=str)
        extra = sorted(set(seen) - set(expected), key=str)
        raise ctx.fail(
            PagingBroken, f"pages of {per_page} hold other codes than one page of 100: missing {missing}, extra {extra}"
        )
    problem = order_problem([item.get("id") for item in reference], load_contract(API).operation("listCodes"))
    if problem:
        ctx.judge(
            ctx.session.contract.operation("listCodes").extension("x-order") is not None,
            PagingBroken,
            f"the list is not {problem}",
        )
    beyond = ctx.expect(
        ctx.client.get(LIST, params={"page": last_page + 1, "per_page": per_page}),
        200,
        why="reading the page after the last",
    )
    body = ctx.body(beyond)
    if body.get("data"):
        raise ctx.fail(PagingBroken, f"page {last_page + 1}, after the last page, holds codes", exchange=beyond)


def judge_foreign_delete(ctx: ScenarioContext, exchange: Any, why: str) -> bool:
    """A bulk delete naming ids that are not (or no longer) the user's: refused with 422 (the mock's choice,
    `x-foreign-ids: reject`) or answered 204 with those ids skipped; whatever else it did is judged by reading
    back. Answers whether the server refused it."""
    if exchange.status == 422:
        body = ctx.body(exchange)
        if not isinstance(body.get("errors"), dict):
            raise ctx.fail(ValidationFieldMissing, f"{why}: the 422 has no `errors`", exchange=exchange)
        return True
    ctx.expect(exchange, 204, 422, why=why)
    if load_contract(API).operation("deleteCodes").extension("x-foreign-ids") == "reject":
        ctx.judge(
            ctx.session.contract.operation("deleteCodes").extension("x-foreign-ids") is not None,
            StateMismatch,
            f"{why}: answered 204 (ids skipped) where the mock refuses such ids with 422",
            exchange=exchange,
        )
    return False


@scenario(API, needs=("intercom_id",), writes=True)
def vms_bulk_delete(ctx: ScenarioContext) -> None:
    """Bulk delete removes exactly the given ids and refuses more than 200 (naming `ids`); ids that are not the
    user's are refused without deleting anything, or skipped while the user's own ones go."""
    first, second, third = (create_code(ctx, f"conformance bulk {n}") for n in range(3))
    ctx.expect(delete_codes(ctx.client, [first["id"], second["id"]]), 204, why="deleting two of three codes")
    listed = _by_id(list_all(ctx))
    for gone in (first, second):
        if gone["id"] in listed:
            raise ctx.fail(StateMismatch, f"code {gone['id']} is still listed after the delete answered 204")
    if third["id"] not in listed:
        raise ctx.fail(StateMismatch, f"code {third['id']} was not in the delete request but is gone")
    too_many = delete_codes(ctx.client, [third["id"]] * (VMS_BULK_LIMIT + 1))
    errors = ctx.body(ctx.expect(too_many, 422, why=f"deleting {VMS_BULK_LIMIT + 1} ids")).get("errors")
    if not isinstance(errors, dict) or "ids" not in errors:
        raise ctx.fail(
            ValidationFieldMissing,
            f"refusing {VMS_BULK_LIMIT + 1} ids does not name `ids`: {errors}",
            exchange=too_many,
        )
    mixed = delete_codes(ctx.client, [third["id"], first["id"]])
    refused = judge_foreign_delete(ctx, mixed, "deleting a live code together with an already deleted one")
    still_there = third["id"] in _by_id(list_all(ctx))
    if refused and not still_there:
        raise ctx.fail(StateMismatch, f"a refused bulk delete still deleted code {third['id']}")
    if not refused and still_there:
        raise ctx.fail(
            StateMismatch, f"code {third['id']} is still listed after a bulk delete that named it answered 204"
        )
    if still_there:
        ctx.expect(delete_codes(ctx.client, [third["id"]]), 204, why="deleting the last code")


@scenario(API, needs=("intercom_id",), writes=True)
def vms_create_validation(ctx: ScenarioContext) -> None:
    """Creating with a missing, blank or malformed field is refused naming that field (and a past expiry, where
    the mock chose to refuse it)."""
    path = f"/api/v1/intercom/{ctx.target.intercom_id}/codes"
    past = (ctx.session.clock.now() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    # (body, fields of which the 422 must name at least one)
    cases = [
        ({}, ("title", "expired_at")),
        ({"title": "conformance malformed", "expired_at": "tomorrow noon"}, ("expired_at",)),
    ]
    blank = {"title": "   ", "expired_at": ctx.session.policy.expiry_text()}
    exchange = ctx.client.post(path, json_body=blank)
    if exchange.status == 200:
        ctx.judge(ctx.strict, StateMismatch, "a blank title makes a code", exchange=exchange)
    else:
        _named(ctx, exchange, blank, ("title",))
    future_only = load_contract(API).operation("createCode").extension("x-expiry") == "future"
    refusal_documented = ctx.session.contract.operation("createCode").extension("x-expiry") is not None
    accepted_past = ctx.client.post(path, json_body={"title": "conformance past", "expired_at": past})
    if accepted_past.status == 200:
        # The code is born expired (and the ledger removes it at the end); a server may do that.
        if future_only:
            ctx.judge(
                refusal_documented, StateMismatch, "an expired_at in the past makes a code", exchange=accepted_past
            )
    else:
        _named(ctx, accepted_past, {"title": "conformance past", "expired_at": past}, ("expired_at",))
    for body, fields in cases:
        exchange = ctx.client.post(path, json_body=body)
        if exchange.status == 200:
            raise ctx.fail(
                StateMismatch,
                f"creating a code with {body} was accepted",
                exchange=exchange,
                check="vms_create_validation",
            )
        _named(ctx, exchange, body, fields)


def _named(ctx: ScenarioContext, exchange: Any, body: dict[str, Any], fields: tuple[str, ...]) -> None:
    errors = ctx.body(ctx.expect(exchange, 422, why=f"creating a code with {body}")).get("errors")
    if not isinstance(errors, dict) or not set(fields) & set(errors):
        raise ctx.fail(
            ValidationFieldMissing,
            f"creating with {body}: the 422 names none of {list(fields)}: {errors}",
            exchange=exchange,
        )


@scenario(API, needs=("other",))
def vms_tenant_isolation(ctx: ScenarioContext) -> None:
    """Another user neither sees nor deletes this user's codes, nor creates codes on this user's intercom."""
    ours = list_all(ctx)
    created = None
    if ctx.target.intercom_id is not None and not ctx.session.options.read_only:
        created = create_code(ctx, "conformance tenant")
        ours.append(created)
    theirs = _by_id(list_all(ctx, ctx.other))
    leaked = [code["id"] for code in ours if code.get("id") in theirs]
    if leaked:
        raise ctx.fail(TenantLeak, f"the other user's list shows this user's codes {leaked}")
    if created is None:
        return
    refused = delete_codes(ctx.other, [created["id"]])
    if created["id"] not in _by_id(list_all(ctx)):
        raise ctx.fail(
            TenantLeak,
            f"the other user deleted this user's code {created['id']} (HTTP {refused.status})",
            exchange=refused,
        )
    # The code is untouched (read back as its owner): refused or skipped, isolation holds.
    judge_foreign_delete(ctx, refused, "the other user deleting this user's code")
    foreign = ctx.other.post(
        f"/api/v1/intercom/{ctx.target.intercom_id}/codes",
        json_body={"title": "conformance tenant probe", "expired_at": ctx.session.policy.expiry_text()},
    )
    if foreign.status == 200:
        body = foreign.json() or {}
        if isinstance(body, dict) and "id" in body:
            delete_codes(ctx.other, [body["id"]])
        raise ctx.fail(
            TenantLeak,
            f"the other user created a code on this user's intercom {ctx.target.intercom_id}",
            exchange=foreign,
        )
    ctx.expect(foreign, 404, why="the other user creating a code on this user's intercom", kind=TenantLeak)


# ---------------------------------------------------------------------------------------------- pushes

PUSH_EVENT = "App\\Events\\UserPush"
#: how long a documented push may take to arrive, and how long after the other device got it the sender is watched
PUSH_WAIT_SECONDS = 5.0
SENDER_GRACE_SECONDS = 0.5


@scenario(API, needs=("intercom_id",), writes=True)
def vms_push(ctx: ScenarioContext) -> None:
    """Seed 004: after a create the user's channel gets `intercom.code.store` with the code, after a delete
    `intercom.code.delete` with its id, and the device whose socket id came in `X-Socket-ID` gets neither. Found
    the way an app finds it: `wsurl`, the Pusher protocol, `broadcasting/auth`, `private-user.{id}`."""
    from ..pusher import PushError, PusherSocket, socket_urls

    user_id = ctx.session.user_ids.get("primary")
    if user_id is None:
        raise ScenarioSkipped("the login answered no user id, so there is no private-user channel to join")
    answer = ctx.client.get("/api/v1/wsurl")
    info = answer.json()
    if answer.status != 200 or not isinstance(info, dict) or not socket_urls(info):
        raise ScenarioSkipped(f"wsurl answered HTTP {answer.status} without a socket address")
    channel = f"private-user.{user_id}"
    sockets: list[PusherSocket] = []
    try:
        for _ in range(2):
            socket = PusherSocket(socket_urls(info), timeout=PUSH_WAIT_SECONDS)
            sockets.append(socket)
            auth = ctx.client.post(
                "/api/v1/broadcasting/auth", data={"socket_id": socket.socket_id, "channel_name": channel}
            )
            signature = ctx.body(ctx.expect(auth, 200, why=f"authorising {channel}")).get("auth")
            if not isinstance(signature, str) or not socket.subscribe(channel, signature):
                raise ctx.fail(PushMismatch, f"the socket refused {channel} with the signature the API gave")
        sender, other = sockets
        created = ctx.client.post(
            f"/api/v1/intercom/{ctx.target.intercom_id}/codes",
            json_body={"title": "conformance push", "expired_at": ctx.session.policy.expiry_text()},
            headers={"X-Socket-ID": sender.socket_id},
        )
        code = ctx.body(ctx.expect(created, 200, why="creating a code for the push"))
        _expect_push(ctx, other, sender, "intercom.code.store", lambda p: _stored_id(p) == code.get("id"), code)
        deleted = delete_codes_from(ctx, [code["id"]], other.socket_id)
        ctx.expect(deleted, 204, why="deleting the pushed code")
        _expect_push(
            ctx, sender, other, "intercom.code.delete", lambda p: code["id"] in (p.get("deleted_ids") or []), code
        )
    except PushError as exc:
        raise ScenarioSkipped(f"the push socket could not be used: {exc}") from None
    finally:
        for socket in sockets:
            socket.close()


def delete_codes_from(ctx: ScenarioContext, ids: list[Any], socket_id: str) -> Any:
    return ctx.client.delete(LIST, json_body={"ids": ids}, headers={"X-Socket-ID": socket_id})


def _stored_id(payload: dict[str, Any]) -> Any:
    code = payload.get("intercom_code")
    return code.get("id") if isinstance(code, dict) else None


def _expect_push(
    ctx: ScenarioContext,
    receiver: Any,
    sender: Any,
    kind: str,
    matches: Any,
    code: dict[str, Any],
) -> None:
    def wanted(event: dict[str, Any]) -> bool:
        if event.get("event") != PUSH_EVENT:
            return False
        from ..pusher import event_data

        payload = event_data(event)
        return payload.get("type") == kind and bool(matches(payload))

    if receiver.wait_for(wanted) is None:
        raise ctx.fail(
            PushMismatch,
            f"no `{kind}` push for code {code.get('id')} reached the user's other device within {PUSH_WAIT_SECONDS} s",
        )
    if sender.wait_for(wanted, timeout=SENDER_GRACE_SECONDS) is not None:
        raise ctx.fail(
            PushMismatch, f"the `{kind}` push for code {code.get('id')} reached the device that sent X-Socket-ID"
        )
