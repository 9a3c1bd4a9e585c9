"""An authenticated session with one target: clients per identity, what was discovered, and the ledger.

Opening a session is the run's preflight: a server that does not answer, or refuses the given credentials, ends
the run with exit code 2 (it could not be done), not with a verdict.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .client import ApiClient, Exchange, ServerClock, Unreachable
from .contract import Contract, load_contract
from .redact import Redactor
from .safety import Ledger, RetryPolicy, SafetyPolicy, Throttle, exchange_path_params
from .target import Credentials, Options, Target

__all__ = ["RunAborted", "Session", "open_session"]

#: VMS wants every request to say what client and device it is
VMS_CLIENT_HEADERS = {"Accept": "application/json", "X-Client": "web"}
DISCOVERY_LIMIT = 5


class RunAborted(RuntimeError):
    """The run cannot be done (exit code 2)."""


@dataclass
class Session:
    target: Target
    options: Options
    contract: Contract
    client: ApiClient
    anonymous: ApiClient
    other: ApiClient | None
    limited: ApiClient | None
    policy: SafetyPolicy
    ledger: Ledger
    throttle: Throttle
    clock: ServerClock
    redactor: Redactor
    #: the header Schemathesis sends as the primary identity
    auth_header: tuple[str, str]
    #: the VMS user id behind the primary and the other login
    user_ids: dict[str, Any] = field(default_factory=dict)
    #: ids found on the server: `intercoms`, `codes` (Seam), `customers` (Magicline)
    discovered: dict[str, list[Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def api(self) -> str:
        return self.target.api

    def close(self) -> None:
        self.client.close()


def _auth_headers(api: str, credentials: Credentials, vms_token: str | None = None) -> dict[str, str]:
    if api == "magicline":
        return {"X-API-KEY": credentials.api_key or ""}
    if api == "seam":
        return {"Authorization": f"Bearer {credentials.token}"}
    return {"Authorization": f"Bearer {vms_token}"}


def vms_login(client: ApiClient, credentials: Credentials) -> tuple[str, Any]:
    """Log in to VMS; returns the bare bearer token and the user id."""
    exchange = client.post("/api/v1/token", json_body={"login": credentials.login, "password": credentials.password})
    body = exchange.json()
    if exchange.status != 200 or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise RunAborted(
            f"VMS login as {credentials.login!r} failed (HTTP {exchange.status}); check --login/--password"
        )
    token = body["access_token"].removeprefix("Bearer ").strip()
    user = body.get("user") if isinstance(body.get("user"), dict) else {}
    return token, user.get("id")


def _check_accepted(exchange: Exchange, what: str) -> None:
    if exchange.status in (401, 403):
        raise RunAborted(f"the server refused {what} (HTTP {exchange.status})")


def open_session(target: Target, options: Options, listener: Callable[[Exchange], None] | None = None) -> Session:
    """Authenticate and discover ids; raises RunAborted when the run cannot be done."""
    problems = target.problems()
    if problems:
        raise RunAborted("; ".join(problems))
    contract = load_contract(target.api)
    throttle = Throttle(options.rate_for(target))
    clock = ServerClock()
    ledger = Ledger()
    redactor = Redactor(target.secrets())
    policy = SafetyPolicy(target.api, target, options, ledger, clock)

    def observe(exchange: Exchange) -> None:
        policy.observe(
            exchange.operation_id,
            exchange.method,
            exchange_path_params(contract, exchange),
            exchange.request_json,
            exchange.status,
            exchange.json(),
        )

    base_headers = (
        dict(VMS_CLIENT_HEADERS, **{"X-UUID": f"conformance-{uuid.uuid4()}"})
        if target.api == "vms"
        else {"Accept": "application/json"}
    )
    listeners = [observe] + ([listener] if listener else [])
    anonymous = ApiClient(
        target.base_url,
        headers=base_headers,
        throttle=throttle,
        retry=RetryPolicy(),
        clock=clock,
        timeout=options.request_timeout,
        listeners=listeners,
        resolve=lambda method, path: _operation_id(contract, method, path),
    )
    try:
        session = _authenticate(target, options, contract, anonymous, policy, ledger, throttle, clock, redactor)
        _discover(session)
    except Unreachable as exc:
        anonymous.close()
        raise RunAborted(f"the server at {target.base_url} did not answer: {redactor(str(exc))}") from None
    except RunAborted:
        anonymous.close()
        raise
    return session


def _operation_id(contract: Contract, method: str, path: str) -> str | None:
    operation = contract.find(method, path)
    return operation.operation_id if operation else None


def _authenticate(
    target: Target,
    options: Options,
    contract: Contract,
    anonymous: ApiClient,
    policy: SafetyPolicy,
    ledger: Ledger,
    throttle: Throttle,
    clock: ServerClock,
    redactor: Redactor,
) -> Session:
    api = target.api
    user_ids: dict[str, Any] = {}
    token = other_token = None
    if api == "vms":
        token, user_ids["primary"] = vms_login(anonymous, target.credentials)
        redactor.extend([token])
        if target.other is not None:
            other_token, user_ids["other"] = vms_login(anonymous, target.other)
            redactor.extend([other_token])
    client = anonymous.derive(headers=_auth_headers(api, target.credentials, token))
    other = None
    if target.other is not None:
        other = anonymous.derive(headers=_auth_headers(api, target.other, other_token))
    limited = None
    if api == "magicline" and target.limited_api_key:
        limited = anonymous.derive(headers={"X-API-KEY": target.limited_api_key})
    name, value = next(iter(_auth_headers(api, target.credentials, token).items()))
    return Session(
        target=target,
        options=options,
        contract=contract,
        client=client,
        anonymous=anonymous,
        other=other,
        limited=limited,
        policy=policy,
        ledger=ledger,
        throttle=throttle,
        clock=clock,
        redactor=redactor,
        auth_header=(name, value),
        user_ids=user_ids,
    )


def _discover(session: Session) -> None:
    """Find ids to read (never to write: writes use only the ids the user names)."""
    client, api = session.client, session.api
    if api == "seam":
        listing = client.get("/door_locks")
        _check_accepted(listing, "the Seam token")
        body = listing.json()
        intercoms = (
            [item.get("intercom_id") for item in (body or {}).get("intercoms", []) if isinstance(item, dict)]
            if isinstance(body, dict)
            else []
        )
        session.discovered["intercoms"] = [i for i in intercoms if isinstance(i, str)][:DISCOVERY_LIMIT]
        codes: list[str] = []
        for intercom in session.discovered["intercoms"]:
            answer = client.get("/access_codes", params={"intercom_id": intercom}).json()
            if isinstance(answer, dict):
                codes += [c.get("access_code_id") for c in answer.get("access_codes", []) if isinstance(c, dict)]
        session.discovered["codes"] = [c for c in codes if isinstance(c, str)][:DISCOVERY_LIMIT]
    elif api == "magicline":
        listing = client.get("/v1/customers", params={"sliceSize": 50})
        _check_accepted(listing, "the Magicline API key")
        body = listing.json()
        customers = (
            [c.get("id") for c in body.get("result", []) if isinstance(c, dict)] if isinstance(body, dict) else []
        )
        session.discovered["customers"] = [c for c in customers if isinstance(c, int)][:DISCOVERY_LIMIT]
    elif api == "vms":
        listing = client.get("/api/v1/intercom/codes", params={"per_page": 1})
        _check_accepted(listing, "the VMS token")
        if session.target.intercom_id is None:
            session.notes.append(
                "VMS cannot list intercoms: without --intercom-id the checks that create codes are skipped"
            )
