"""Seam-compatible intercom cloud: the `{error_id, error_message}` body, filtered lists, reads that agree with
lists, deletes that stick, owners kept apart, and the OAuth edges."""

from __future__ import annotations

import re
from typing import Any

from ..failures import AuthNotEnforced, ErrorBodyMismatch, FieldMismatch, FilterLeak, StateMismatch, TenantLeak
from ..scenarios import ScenarioContext, excerpt, scenario
from .common import Observation, answers_without_token, response_check

API = "seam"
#: the 500s the vendor documents, with their error ids
DOCUMENTED_500 = {"unlockIntercom": "INTERCOM_DISCONNECTED", "deleteAccessCode": "ACCESS_CODE_REMOVAL_FAILED"}
ERROR_ID = re.compile(r"^[A-Z][A-Z0-9_]*$")
SEAM_REDIRECT = "https://connect.integrations.getseam.com/oauth/callback"


# ---------------------------------------------------------------------------------------------- response checks


@response_check(API)
def seam_error_body(observation: Observation) -> None:
    """Every error is `{error_id, error_message}`; a documented 500 carries its documented error id."""
    if observation.status < 400 or observation.method == "HEAD":
        return
    body = observation.body
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("error_id"), str)
        or not isinstance(body.get("error_message"), str)
    ):
        raise ErrorBodyMismatch(
            check="seam_error_body",
            operation=observation.label,
            message=f"HTTP {observation.status} body is not {{error_id, error_message}}: {observation.content[:200]!r}",
        )
    if not ERROR_ID.match(body["error_id"]):
        observation.deviate("seam_error_body", "an error_id is not upper-case words joined by `_`")
    documented = DOCUMENTED_500.get(observation.operation_id or "")
    if observation.status == 500 and documented and body["error_id"] != documented:
        raise ErrorBodyMismatch(
            check="seam_error_body",
            operation=observation.label,
            message=f"500 has error_id {body['error_id']!r}; the vendor documents {documented!r} for this operation",
        )


@response_check(API)
def seam_health(observation: Observation) -> None:
    """`GET /health` answers 200 `{"ok": true}` (a 401 without a token differs only from the mock's choice)."""
    if observation.operation_id != "health":
        return
    if observation.status == 401 and answers_without_token(API, "health"):
        return  # mock_choice_security's to judge
    if observation.status != 200 or observation.body != {"ok": True}:
        raise FieldMismatch(
            check="seam_health",
            operation=observation.label,
            message=f'health answered {observation.status} {observation.content[:200]!r}, not 200 {{"ok": true}}',
        )


@response_check(API)
def seam_list_filter(observation: Observation) -> None:
    """A list filtered by `intercom_id` holds only that intercom's codes."""
    if observation.operation_id != "listAccessCodes" or observation.status != 200:
        return
    wanted = observation.query.get("intercom_id")
    body = observation.body
    if wanted is None or not isinstance(body, dict) or not isinstance(body.get("access_codes"), list):
        return
    foreign = [
        item.get("access_code_id")
        for item in body["access_codes"]
        if isinstance(item, dict) and str(item.get("intercom_id")).lower() != str(wanted).lower()
    ]
    if foreign:
        raise FilterLeak(
            check="seam_list_filter",
            operation=observation.label,
            message=f"the list for intercom {wanted} holds codes of other intercoms: {foreign}",
        )


# ---------------------------------------------------------------------------------------------- helpers


def codes_of(ctx: ScenarioContext, intercom: str, client: Any = None) -> list[dict[str, Any]]:
    exchange = ctx.expect(
        (client or ctx.client).get("/access_codes", params={"intercom_id": intercom}),
        200,
        why=f"listing the codes of intercom {intercom}",
    )
    items = ctx.body(exchange).get("access_codes")
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def intercoms_of(ctx: ScenarioContext, client: Any = None) -> list[dict[str, Any]]:
    exchange = ctx.expect((client or ctx.client).get("/door_locks"), 200, why="listing intercoms")
    items = ctx.body(exchange).get("intercoms")
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


# ---------------------------------------------------------------------------------------------- scenarios


@scenario(API)
def seam_health_ok(ctx: ScenarioContext) -> None:
    """Health answers `{"ok": true}` with the owner's token (and, as the mock chose, without one)."""
    ctx.expect(ctx.client.get("/health"), 200, why="health with a token", check="seam_health")
    ctx.anonymous.get("/health")  # without a token: judged by the `seam_health` response check


@scenario(API)
def seam_auth_enforced(ctx: ScenarioContext) -> None:
    """Without a token, or with a wrong one, reads are refused (4xx, the vendor's error body)."""
    paths = ["/door_locks"]
    paths += [f"/intercoms/{i}" for i in ctx.session.discovered.get("intercoms", [])[:1]]
    paths += [f"/access_codes?intercom_id={i}" for i in ctx.session.discovered.get("intercoms", [])[:1]]
    paths += [f"/access_codes/{c}" for c in ctx.session.discovered.get("codes", [])[:1]]
    for headers, what in (({}, "no token"), ({"Authorization": "Bearer conformance-invalid-token"}, "a wrong token")):
        for path in paths:
            route, _, query = path.partition("?")
            params = dict(item.split("=", 1) for item in query.split("&")) if query else None
            exchange = ctx.anonymous.get(route, params=params, headers=headers)
            if exchange.status not in (401, 403):
                raise ctx.fail(
                    AuthNotEnforced, f"GET {path} with {what} answered {exchange.status}, not 401", exchange=exchange
                )


@scenario(API)
def seam_get_matches_list(ctx: ScenarioContext) -> None:
    """Reading one intercom or code answers what the list says about it."""
    for intercom in intercoms_of(ctx)[:5]:
        ident = intercom.get("intercom_id")
        single = ctx.body(ctx.expect(ctx.client.get(f"/intercoms/{ident}"), 200, why="reading a listed intercom"))
        if single != intercom:
            raise ctx.fail(StateMismatch, f"intercom {ident}: the list says {intercom}, a read says {single}")
        for code in codes_of(ctx, str(ident))[:5]:
            exchange = ctx.client.get(f"/access_codes/{code.get('access_code_id')}")
            read = ctx.body(ctx.expect(exchange, 200, why="reading a listed code"))
            if read != code:
                raise ctx.fail(
                    StateMismatch,
                    f"code {code.get('access_code_id')}: the list says {code}, a read says {read}",
                    exchange=exchange,
                )


@scenario(API, needs=("other",))
def seam_tenant_isolation(ctx: ScenarioContext) -> None:
    """Another owner neither sees nor reads nor deletes this owner's intercoms and codes."""
    own = {str(item.get("intercom_id")): item for item in intercoms_of(ctx)}
    ours = set(own)
    theirs = {str(item.get("intercom_id")) for item in intercoms_of(ctx, ctx.other)}
    if ours & theirs:
        raise ctx.fail(TenantLeak, f"both owners list intercoms {sorted(ours & theirs)}")
    codes: dict[str, dict[str, Any]] = {}
    for intercom in sorted(ours)[:3]:
        listed = codes_of(ctx, intercom)
        codes.update({str(c.get("access_code_id")): c for c in listed})
        name = own[intercom].get("name")
        exchange = ctx.other.get(f"/intercoms/{intercom}")
        not_shown(ctx, exchange, {name}, "the other owner reading this owner's intercom")
        exchange = ctx.other.get("/access_codes", params={"intercom_id": intercom})
        digits = {c.get("code") for c in listed}
        not_shown(ctx, exchange, digits, "the other owner listing this owner's intercom's codes")
    for code in ctx.session.discovered.get("codes", [])[:3]:
        digits = {codes.get(str(code), {}).get("code")}
        not_shown(ctx, ctx.other.get(f"/access_codes/{code}"), digits, "the other owner reading this owner's code")
    disposable = ctx.target.disposable_code_id
    if disposable and not ctx.session.options.read_only:
        refused = ctx.other.delete(f"/access_codes/{disposable}")
        still = ctx.client.get(f"/access_codes/{disposable}")
        if still.status != 200:
            raise ctx.fail(
                TenantLeak,
                f"the other owner deleted this owner's code {disposable} (HTTP {refused.status})",
                exchange=refused,
            )
        # Untouched (read back as its owner): whatever the status said, isolation holds.
        if refused.status < 400:
            ctx.deviate(f"the other owner's delete answered {refused.status} and deleted nothing", refused)
        else:
            ctx.expect(refused, 404, why="the other owner deleting this owner's code", kind=TenantLeak)


def not_shown(ctx: ScenarioContext, exchange: Any, secrets: set[Any], why: str) -> None:
    """Another tenant's request about this tenant's object: refused (404 is the mock's choice; another 4xx is a
    note), and none of the object's own values (`secrets`, which the request did not carry) in the answer."""
    shown = _values(exchange.json()) & {str(value) for value in secrets if value}
    if exchange.status < 400 or shown:
        raise ctx.fail(TenantLeak, f"{why} answered HTTP {exchange.status}: {excerpt(exchange)}", exchange=exchange)
    ctx.expect(exchange, 404, why=why, kind=TenantLeak)


def _values(body: Any) -> set[str]:
    """Every scalar value in a JSON body, as text."""
    if isinstance(body, dict):
        return {v for item in body.values() for v in _values(item)}
    if isinstance(body, list):
        return {v for item in body for v in _values(item)}
    return set() if body is None else {str(body)}


@scenario(API, needs=("disposable_code_id",), writes=True)
def seam_delete_sticks(ctx: ScenarioContext) -> None:
    """A deleted code is gone from reads and from its intercom's list, and a second delete finds nothing."""
    ident = ctx.target.disposable_code_id
    before = ctx.client.get(f"/access_codes/{ident}")
    code = ctx.body(ctx.expect(before, 200, why="reading the disposable code before deleting it"))
    intercom = str(code.get("intercom_id"))
    deleted = ctx.expect(ctx.client.delete(f"/access_codes/{ident}"), 200, why="deleting the disposable code")
    if deleted.json() != {"ok": True}:
        raise ctx.fail(
            FieldMismatch, f'delete answered {deleted.content[:200]!r}, not {{"ok": true}}', exchange=deleted
        )
    ctx.expect(
        ctx.client.get(f"/access_codes/{ident}"), 404, why="reading the code after its delete", kind=StateMismatch
    )
    if any(str(item.get("access_code_id")) == ident for item in codes_of(ctx, intercom)):
        raise ctx.fail(StateMismatch, f"code {ident} is still listed on intercom {intercom} after its delete")
    ctx.expect(
        ctx.client.delete(f"/access_codes/{ident}"), 404, why="deleting the code a second time", kind=StateMismatch
    )


@scenario(API)
def seam_oauth(ctx: ScenarioContext) -> None:
    """OAuth refuses a foreign redirect_uri and an unknown authorization code, and shows the login page."""
    page = ctx.anonymous.get(
        "/authorize", params={"redirect_uri": SEAM_REDIRECT, "state": "conformance"}, headers={"Accept": "text/html"}
    )
    ctx.expect(page, 200, why="the login page for a Seam redirect_uri")
    foreign = ctx.anonymous.get("/authorize", params={"redirect_uri": "https://attacker.example.com/callback"})
    ctx.expect(foreign, 400, why="a redirect_uri outside integrations.getseam.com")
    exchange = ctx.anonymous.post(
        "/oauth/token",
        json_body={
            "code": "conformance-unknown-code",
            "client_id": "seam",
            "client_secret": "conformance-not-the-secret",
        },
    )
    if exchange.status < 400 or exchange.status >= 500:
        raise ctx.fail(
            AuthNotEnforced,
            f"an unknown authorization code and a wrong secret got HTTP {exchange.status}",
            exchange=exchange,
        )
