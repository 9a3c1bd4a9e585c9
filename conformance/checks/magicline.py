"""Magicline: `errorMessage` on every error, HEAD that checks only the key, scopes, the access-medium life cycle,
offset paging and studios kept apart."""

from __future__ import annotations

import random
import time
from typing import Any

from mockserver.contracts import load_contract

from ..failures import (
    AuthNotEnforced,
    ErrorBodyMismatch,
    FieldMismatch,
    PagingBroken,
    ScopeNotEnforced,
    StateMismatch,
    TenantLeak,
)
from ..scenarios import ScenarioContext, scenario
from .common import Observation, order_problem, raise_paging, response_check, slice_problems

API = "magicline"
CUSTOMERS = "/v1/customers"
MAX_SLICES = 200
GRANTING = ("addAccessMediums", "addAccessMedium")


# ---------------------------------------------------------------------------------------------- response checks


@response_check(API)
def magicline_error_body(observation: Observation) -> None:
    """Every error carries a non-empty `errorMessage`."""
    if observation.status < 400 or observation.method == "HEAD":
        return
    body = observation.body
    if not isinstance(body, dict) or not isinstance(body.get("errorMessage"), str) or not body["errorMessage"]:
        raise ErrorBodyMismatch(
            check="magicline_error_body",
            operation=observation.label,
            message=f"HTTP {observation.status} body has no errorMessage: {observation.content[:200]!r}",
        )


@response_check(API)
def magicline_head(observation: Observation) -> None:
    """HEAD answers only 200 (valid key) or 401, without a body."""
    if observation.method != "HEAD":
        return
    if observation.status not in (200, 401) or observation.content:
        raise AuthNotEnforced(
            check="magicline_head",
            operation=observation.label,
            message=f"HEAD answered {observation.status} with {len(observation.content)} body "
            "bytes; it only checks the key (200 or 401, no body)",
        )


@response_check(API)
def magicline_slice(observation: Observation) -> None:
    """One slice of customers holds at most `sliceSize` customers, each once, of the asked status (and, as the
    mock chose, in id order after its `offset`, answering the last id as the next `offset`)."""
    if observation.operation_id != "getCustomers" or observation.status != 200:
        return
    query = observation.query
    try:
        size = int(query.get("sliceSize", 100))
    except (TypeError, ValueError):
        return
    after_text = query.get("offset", query.get("lastOffsetId"))
    after = int(after_text) if isinstance(after_text, (str, int)) and str(after_text).isdigit() else None
    status = query.get("customerStatus") if isinstance(query.get("customerStatus"), str) else None
    found, chosen = slice_problems(observation.body, slice_size=size, after=after, status=status, cursor=_cursor())
    raise_paging("magicline_slice", observation.label, found)
    for problem in chosen:
        observation.deviate("magicline_slice", problem)


def _cursor() -> str | None:
    """What the mock's `offset` holds, as written."""
    schema = load_contract(API).raw["components"]["schemas"]["CustomerSlice"]["properties"]["offset"]
    return schema.get("x-cursor")


@response_check(API)
def magicline_medium_echo(observation: Observation) -> None:
    """An added or changed access medium answers the type and value it was given, and an id."""
    if observation.status != 200 or observation.operation_id not in (*GRANTING, "updateAccessMediums"):
        return
    body, request = observation.body, observation.request_body
    if not isinstance(body, dict) or not isinstance(request, dict):
        return
    problems = []
    if not isinstance(body.get("id"), int):
        problems.append(f"the medium has no integer id: {body.get('id')!r}")
    if isinstance(request.get("value"), str) and body.get("value") != request["value"]:
        problems.append(f"value is {body.get('value')!r}, the request sent {request['value']!r}")
    if observation.operation_id in GRANTING and "type" in request and body.get("type") != request["type"]:
        problems.append(f"type is {body.get('type')!r}, the request sent {request['type']!r}")
    if problems:
        raise FieldMismatch(check="magicline_medium_echo", operation=observation.label, message="\n".join(problems))


# ---------------------------------------------------------------------------------------------- helpers


def customer(ctx: ScenarioContext, customer_id: Any, client: Any = None, check: str | None = None) -> dict[str, Any]:
    exchange = (client or ctx.client).get(f"{CUSTOMERS}/{customer_id}")
    return ctx.body(ctx.expect(exchange, 200, why=f"reading customer {customer_id}", check=check), check=check)


def mediums(ctx: ScenarioContext, customer_id: Any, check: str | None = None) -> dict[Any, list[dict[str, Any]]]:
    found: dict[Any, list[dict[str, Any]]] = {}
    for item in customer(ctx, customer_id, check=check).get("accessMediums") or []:
        if isinstance(item, dict):
            found.setdefault(item.get("id"), []).append(item)
    return found


def fresh_value() -> str:
    # Unique per run (a value already used in the studio is refused), digits like a card number.
    return f"7{int(time.time() * 1000) % 10**9:09d}{random.randint(0, 99):02d}"


def add_medium(ctx: ScenarioContext, client: Any = None, check: str | None = None) -> dict[str, Any]:
    exchange = (client or ctx.client).post(
        f"{CUSTOMERS}/{ctx.target.customer_id}/access-mediums",
        json_body={"type": "CARD_NUMBER", "value": fresh_value()},
    )
    return ctx.body(
        ctx.expect(exchange, 200, why="adding an access medium to the test customer", check=check), check=check
    )


def walk(ctx: ScenarioContext, size: int, status: str | None = None) -> list[Any]:
    """Every customer id, slice by slice."""
    ids: list[Any] = []
    offset: str | None = None
    for _ in range(MAX_SLICES):
        params: dict[str, Any] = {"sliceSize": size}
        if offset is not None:
            params["offset"] = offset
        if status:
            params["customerStatus"] = status
        exchange = ctx.expect(ctx.client.get(CUSTOMERS, params=params), 200, why=f"reading a slice of {size}")
        body = ctx.body(exchange)
        result = body.get("result") if isinstance(body.get("result"), list) else []
        ids += [item.get("id") for item in result if isinstance(item, dict)]
        if body.get("hasNext") is not True:
            return ids
        if not result:
            raise ctx.fail(PagingBroken, "hasNext is true on an empty slice", exchange=exchange)
        offset = str(body.get("offset"))
    raise ctx.fail(PagingBroken, f"more than {MAX_SLICES} slices of {size}: hasNext never turns false")


# ---------------------------------------------------------------------------------------------- scenarios


@scenario(API)
def magicline_auth_enforced(ctx: ScenarioContext) -> None:
    """No key, a wrong key or a mis-named header answers 401 (with errorMessage); the header name's case does not
    matter."""
    key = ctx.target.credentials.api_key
    paths = [CUSTOMERS] + [f"{CUSTOMERS}/{c}" for c in ctx.session.discovered.get("customers", [])[:1]]
    for headers, what in (
        ({}, "no key"),
        ({"X-API-KEY": "conformance-invalid-key"}, "a wrong key"),
        ({"X-API-TOKEN": key}, "the key under a wrong header name"),
    ):
        for path in paths:
            exchange = ctx.anonymous.get(path, headers=headers)
            if exchange.status != 401:
                raise ctx.fail(
                    AuthNotEnforced, f"GET {path} with {what} answered {exchange.status}, not 401", exchange=exchange
                )
    ctx.expect(ctx.anonymous.get(CUSTOMERS, headers={"x-api-key": key}), 200, why="the key in a lower-case header name")


@scenario(API)
def magicline_head_checks_key(ctx: ScenarioContext) -> None:
    """HEAD on any path answers 200 for a valid key (the resource need not exist) and 401 without one."""
    key = ctx.target.credentials.api_key
    paths = [
        CUSTOMERS,
        f"{CUSTOMERS}/987654321987",
        f"{CUSTOMERS}/not-a-number/access-code",
        f"{CUSTOMERS}/987654321987/access-mediums/1",
    ]
    for path in paths:
        for headers, wanted, what in (
            ({"X-API-KEY": key}, 200, "a valid key"),
            ({}, 401, "no key"),
            ({"X-API-KEY": "conformance-invalid-key"}, 401, "a wrong key"),
        ):
            exchange = ctx.anonymous.head(path, headers=headers)
            if exchange.status != wanted:
                raise ctx.fail(
                    AuthNotEnforced,
                    f"HEAD {path} with {what} answered {exchange.status}, not {wanted}",
                    exchange=exchange,
                )


@scenario(API, needs=("limited_api_key", "customer_id"), writes=True)
def magicline_scope_enforced(ctx: ScenarioContext) -> None:
    """A key without CUSTOMER_ACCESS_MEDIUM_WRITE gets 403 for every access-medium write, which changes nothing."""
    ours = add_medium(ctx)
    before = mediums(ctx, ctx.target.customer_id)
    base = f"{CUSTOMERS}/{ctx.target.customer_id}"
    attempts = [
        ("POST", f"{base}/access-mediums", {"type": "CARD_NUMBER", "value": fresh_value()}),
        ("PUT", f"{base}/access-medium", {"type": "PIN", "value": fresh_value()}),
        ("PUT", f"{base}/access-mediums/{ours['id']}", {"value": fresh_value()}),
        ("DELETE", f"{base}/access-mediums/{ours['id']}", None),
    ]
    for method, path, body in attempts:
        kwargs: dict[str, Any] = {} if body is None else {"json_body": body}
        exchange = ctx.limited.request(method, path, **kwargs)
        operation = ctx.session.contract.find(method, path)
        if exchange.status in (404, 405, 410) and operation is not None and operation.raw.get("deprecated"):
            ctx.deviate(f"the deprecated {operation.label} answered {exchange.status}: it seems withdrawn", exchange)
            continue
        if exchange.status != 403:
            raise ctx.fail(
                ScopeNotEnforced,
                f"{method} {path} with a key lacking CUSTOMER_ACCESS_MEDIUM_WRITE answered {exchange.status}, not 403",
                exchange=exchange,
            )
    after = mediums(ctx, ctx.target.customer_id)
    if after != before:
        raise ctx.fail(ScopeNotEnforced, "writes refused with 403 still changed the customer's access mediums")


@scenario(API, needs=("customer_id",), writes=True)
def magicline_medium_lifecycle(ctx: ScenarioContext) -> None:
    """An added medium shows on the customer, a PUT changes its value, a DELETE removes it for good."""
    check = "magicline_medium_lifecycle"
    customer_id = ctx.target.customer_id
    added = add_medium(ctx)
    shown = mediums(ctx, customer_id).get(added["id"], [])
    if len(shown) != 1 or shown[0].get("value") != added.get("value") or shown[0].get("type") != added.get("type"):
        raise ctx.fail(StateMismatch, f"added medium {added} shows on the customer as {shown}", check=check)
    value = fresh_value()
    path = f"{CUSTOMERS}/{customer_id}/access-mediums/{added['id']}"
    changed = ctx.body(ctx.expect(ctx.client.put(path, json_body={"value": value}), 200, why="changing the value"))
    if changed.get("value") != value:
        raise ctx.fail(StateMismatch, f"PUT answered value {changed.get('value')!r}, not {value!r}")
    shown = mediums(ctx, customer_id).get(added["id"], [])
    if len(shown) != 1 or shown[0].get("value") != value:
        raise ctx.fail(StateMismatch, f"after the PUT the customer shows {shown}, not value {value!r}")
    ctx.expect(ctx.client.delete(path), 200, why="deleting the medium")
    if added["id"] in mediums(ctx, customer_id):
        raise ctx.fail(StateMismatch, f"medium {added['id']} still shows on the customer after its DELETE")
    ctx.expect(ctx.client.delete(path), 404, why="deleting the medium a second time", kind=StateMismatch)
    ctx.expect(
        ctx.client.put(path, json_body={"value": fresh_value()}),
        404,
        why="changing a deleted medium",
        kind=StateMismatch,
    )


@scenario(API)
def magicline_paging(ctx: ScenarioContext) -> None:
    """Slices of 50 hold every customer once, the same ones as slices of 500 (in id order, as the mock orders
    them); a status filter holds only that status."""
    small, large = walk(ctx, 50), walk(ctx, 500)
    duplicates = sorted({i for i in small if small.count(i) > 1}, key=str)
    if duplicates:
        raise ctx.fail(PagingBroken, f"customers {duplicates} appear in more than one slice")
    problem = order_problem(small, load_contract(API).operation("getCustomers"))
    if problem:
        in_view = ctx.session.contract.operation("getCustomers").extension("x-order") is not None
        ctx.judge(in_view, PagingBroken, f"customers across slices are not {problem}")
    if sorted(small, key=str) != sorted(large, key=str):
        missing = sorted(set(large) - set(small), key=str)
        extra = sorted(set(small) - set(large), key=str)
        raise ctx.fail(PagingBroken, f"slices of 50 and of 500 disagree: missing {missing}, extra {extra}")
    members = walk(ctx, 50, "MEMBER")
    if not set(members) <= set(large):
        raise ctx.fail(
            PagingBroken,
            f"customerStatus=MEMBER answers customers the full list lacks: "
            f"{sorted(set(members) - set(large), key=str)}",
        )


@scenario(API)
def magicline_get_matches_list(ctx: ScenarioContext) -> None:
    """Reading a customer answers what the list says about it."""
    body = ctx.body(ctx.expect(ctx.client.get(CUSTOMERS, params={"sliceSize": 50}), 200, why="listing customers"))
    for listed in (body.get("result") or [])[:5]:
        if not isinstance(listed, dict):
            continue
        read = customer(ctx, listed.get("id"))
        if read != listed:
            changed = sorted(k for k in {*read, *listed} if read.get(k) != listed.get(k))
            raise ctx.fail(StateMismatch, f"customer {listed.get('id')}: a read differs from the list in {changed}")


@scenario(API, needs=("other",))
def magicline_tenant_isolation(ctx: ScenarioContext) -> None:
    """Another studio's key neither lists, reads nor changes this studio's customers and mediums."""
    ours = set(ctx.session.discovered.get("customers", []))
    if ctx.target.customer_id is not None:
        ours.add(ctx.target.customer_id)
    listing = ctx.other.get(CUSTOMERS, params={"sliceSize": 500})
    theirs = (
        {item.get("id") for item in (listing.json() or {}).get("result", []) if isinstance(item, dict)}
        if isinstance(listing.json(), dict)
        else set()
    )
    if ours & theirs:
        raise ctx.fail(
            TenantLeak, f"the other studio lists this studio's customers {sorted(ours & theirs)}", exchange=listing
        )
    for ident in sorted(ours)[:3]:
        exchange = ctx.other.get(f"{CUSTOMERS}/{ident}")
        # Refused as unknown (404) or as not the key's (403), both documented; anything else shows it.
        ctx.expect(exchange, 403, 404, why="the other studio reading this studio's customer", kind=TenantLeak)
    if ctx.target.customer_id is None or ctx.session.options.read_only:
        return
    base = f"{CUSTOMERS}/{ctx.target.customer_id}"
    ours_medium = add_medium(ctx)
    before = mediums(ctx, ctx.target.customer_id)
    for method, path, body in (
        ("POST", f"{base}/access-mediums", {"type": "CARD_NUMBER", "value": fresh_value()}),
        ("PUT", f"{base}/access-mediums/{ours_medium['id']}", {"value": fresh_value()}),
        ("DELETE", f"{base}/access-mediums/{ours_medium['id']}", None),
    ):
        kwargs: dict[str, Any] = {} if body is None else {"json_body": body}
        exchange = ctx.other.request(method, path, **kwargs)
        if exchange.status < 400:
            raise ctx.fail(
                TenantLeak,
                f"the other studio's {method} on this studio's customer answered HTTP {exchange.status}",
                exchange=exchange,
            )
    # Judged by the effect, read back as the owner: whatever they answered, nothing of this studio changed.
    if mediums(ctx, ctx.target.customer_id) != before:
        raise ctx.fail(TenantLeak, "the other studio's writes changed this studio's customer")
