"""The rules that make a run safe against a real server, and the Schemathesis hooks that enforce them.

1. PUT and DELETE touch only what this run created (unless `--allow-destructive`), and everything this run
   created is removed at the end (`cleanup`).
2. Writes that grant real access go only to the test intercom (VMS `--intercom-id`) or the test customer
   (Magicline `--customer-id`), VMS codes with the shortest expiry the API allows; without the id, those
   operations and checks are skipped with a note. Seam has no create: its delete uses `--disposable-code-id` only.
3. Login endpoints get no generated cases (that would be password guessing); one scenario logs in properly.
4. No door opens unless `--allow-door-unlock`.
5. Requests stay under `--max-rps`; a 429 waits for `Retry-After` (a 429 or 503 without it backs off
   exponentially) before one more try, at most `RetryPolicy.max_retries` times.
6. `--read-only` runs only GET and HEAD (plus the login a VMS session needs).

Generated cases are made safe at the last moment, in a `before_call` hook: an id that could name someone's real
resource is replaced by one of ours. Values that cannot be an id (the negative cases) are left alone, so the
server's validation is still exercised.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import schemathesis

if TYPE_CHECKING:
    from .client import ApiClient, Exchange, ServerClock
    from .contract import Contract
    from .target import Options, Target

__all__ = [
    "DOOR_OPERATIONS",
    "LOGIN_OPERATIONS",
    "Ledger",
    "RetryPolicy",
    "SafetyPolicy",
    "Throttle",
    "cleanup",
    "installed",
]

LOGIN_OPERATIONS = {
    "vms": frozenset({"login"}),
    "seam": frozenset({"exchangeToken", "authorizeLogin"}),
    "magicline": frozenset(),
}
DOOR_OPERATIONS = {"vms": frozenset({"openDoor"}), "seam": frozenset({"unlockIntercom"}), "magicline": frozenset()}
# Operations that create something that works at a door, and the id they need.
GRANTING_OPERATIONS = {
    "vms": {"createCode": "intercom_id"},
    "magicline": {"addAccessMediums": "customer_id", "addAccessMedium": "customer_id"},
    "seam": {},
}
# Operations that change or remove something by id.
DESTRUCTIVE_OPERATIONS = {
    "vms": frozenset({"deleteCodes"}),
    "seam": frozenset({"deleteAccessCode"}),
    "magicline": frozenset({"updateAccessMediums", "deleteAccessMediums"}),
}

#: minutes added to the next whole minute of the server's clock: the earliest `expired_at` VMS accepts (it must
#: lie in the future at `Y-m-d H:i` precision) with room for the request's own latency
EXPIRY_MARGIN_MINUTES = 2
VMS_BULK_LIMIT = 200


# ---------------------------------------------------------------------------------------------- pace


class Throttle:
    """At most `rate` requests per second across every thread of a run (0 means no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - time.time())


@dataclass
class RetryPolicy:
    """When to try a throttled request again."""

    max_retries: int = 3
    #: a longer `Retry-After` is not waited for: the 429 stands as the answer (it is a documented one)
    max_wait: float = 60.0
    backoff: float = 1.0

    def delay(self, status: int, retry_after: str | None, attempt: int) -> float | None:
        if status not in (429, 503) or attempt >= self.max_retries:
            return None
        wait = parse_retry_after(retry_after)
        if wait is None:
            wait = self.backoff * (2**attempt)
        return wait if wait <= self.max_wait else None


# ---------------------------------------------------------------------------------------------- ledger


@dataclass
class Created:
    kind: str
    ident: Any
    parent: Any = None
    body: Any = None
    deleted: bool = False


class Ledger:
    """What this run created (kinds: `vms_code`, `medium`) and what it deleted (also `seam_code`)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], Created] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(kind: str, ident: Any) -> tuple[str, str]:
        return kind, str(ident)

    def add(self, kind: str, ident: Any, *, parent: Any = None, body: Any = None) -> None:
        with self._lock:
            self._items.setdefault(self._key(kind, ident), Created(kind, ident, parent, body))

    def mark_deleted(self, kind: str, ident: Any) -> None:
        with self._lock:
            item = self._items.get(self._key(kind, ident))
            if item is None:
                item = self._items.setdefault(self._key(kind, ident), Created(kind, ident, None, None, True))
            item.deleted = True

    def owns(self, kind: str, ident: Any, parent: Any = None) -> bool:
        item = self._items.get(self._key(kind, ident))
        return item is not None and item.body is not None and (parent is None or str(item.parent) == str(parent))

    def items(self, kind: str, *, live: bool | None = None) -> list[Created]:
        with self._lock:
            return [
                item
                for item in self._items.values()
                if item.kind == kind and item.body is not None and (live is None or item.deleted != live)
            ]

    def deleted(self, kind: str) -> set[Any]:
        """Idents of this kind this run saw deleted (whoever created them)."""
        with self._lock:
            return {item.ident for item in self._items.values() if item.kind == kind and item.deleted}

    def created_count(self) -> int:
        return sum(1 for item in self._items.values() if item.body is not None)


# ---------------------------------------------------------------------------------------------- policy

_ID_LIKE = re.compile(r"\s*\+?0*([0-9]{1,19})\s*")


def id_like(value: Any) -> bool:
    """Whether a server could read `value` as an existing numeric id (so it must not reach a write)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 1
    if isinstance(value, float):
        return value.is_integer() and value >= 1
    if isinstance(value, str):
        match = _ID_LIKE.fullmatch(value)
        return bool(match) and int(match.group(1)) >= 1
    return False


def uuid_like(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value.strip())
    except ValueError:
        return False
    return True


def shortest_expiry(now: datetime) -> datetime:
    """The earliest `expired_at` a VMS server accepts (with a margin), at minute precision."""
    whole = now.replace(second=0, microsecond=0)
    if whole < now:
        whole += timedelta(minutes=1)
    return whole + timedelta(minutes=EXPIRY_MARGIN_MINUTES)


@dataclass
class SafetyPolicy:
    """The safety rules for one target."""

    api: str
    target: Target
    options: Options
    ledger: Ledger
    clock: ServerClock
    _cycle: dict[str, Iterator[Any]] = field(default_factory=dict)

    # -------------------------------------------------------------- what may run

    def excluded(self, contract: Contract) -> dict[str, str]:
        """Operations generated cases must not reach, with the reason (shown as a note)."""
        result: dict[str, str] = {}
        for operation in contract.operations.values():
            reason = self.exclusion(operation.operation_id, operation.method, operation.invented)
            if reason:
                result[operation.operation_id] = reason
        return result

    def exclusion(self, operation_id: str, method: str, invented: bool = False) -> str | None:
        t, o = self.target, self.options
        if invented:
            return "the mock's own implementation detail (x-mock-choice), not a vendor operation"
        if operation_id in LOGIN_OPERATIONS[self.api]:
            return "login endpoints get no generated cases (no credential guessing); the login scenario covers them"
        if o.read_only and method not in ("GET", "HEAD"):
            return "--read-only"
        if operation_id in DOOR_OPERATIONS[self.api]:
            if not o.allow_door_unlock:
                return "opens a real door; pass --allow-door-unlock to test it"
            if self.api == "vms" and t.intercom_id is None:
                return "opens a door; needs --intercom-id (the test intercom)"
        needed = GRANTING_OPERATIONS[self.api].get(operation_id)
        if needed and getattr(t, needed) is None:
            return f"creates a working credential; needs --{needed.replace('_', '-')} (the test one)"
        if operation_id in DESTRUCTIVE_OPERATIONS[self.api] and not o.allow_destructive:
            if self.api == "seam" and t.disposable_code_id is None:
                return "deletes a real code; needs --disposable-code-id (or --allow-destructive)"
            if self.api == "vms" and t.intercom_id is None:
                return "deletes codes; without --intercom-id this run creates none (or pass --allow-destructive)"
            if self.api == "magicline" and t.customer_id is None:
                return (
                    "changes access mediums; without --customer-id this run creates none (or pass --allow-destructive)"
                )
        return None

    def missing(self, needs: tuple[str, ...], writes: bool) -> str | None:
        """Why a scenario with these needs cannot run, or None."""
        t, o = self.target, self.options
        if writes and o.read_only:
            return "--read-only"
        for need in needs:
            if need == "other" and (t.other is None or t.other.is_empty()):
                flag = {
                    "vms": "--other-login/--other-password",
                    "seam": "--other-token",
                    "magicline": "--other-api-key",
                }[self.api]
                return f"needs another tenant's credentials ({flag})"
            if need == "door" and not o.allow_door_unlock:
                return "opens a door; needs --allow-door-unlock"
            if (
                need in ("intercom_id", "customer_id", "disposable_code_id", "limited_api_key")
                and getattr(t, need) is None
            ):
                return f"needs --{need.replace('_', '-')}"
        return None

    # -------------------------------------------------------------- making cases safe

    def expiry_text(self) -> str:
        return shortest_expiry(self.clock.now()).strftime("%Y-%m-%d %H:%M")

    def _next_owned(self, kind: str) -> Created | None:
        live = self.ledger.items(kind, live=True) or self.ledger.items(kind)
        if not live:
            return None
        # Rotate through them so one DELETE does not leave every later case pointing at a gone id.
        index = next(self._cycle.setdefault(kind, itertools.count()))
        return live[index % len(live)]

    def prepare(self, operation_id: str | None, path: dict[str, Any], body: Any) -> Any:
        """Make one generated request safe (in place for `path`); returns the body to send."""
        t, o = self.target, self.options
        if self.api == "vms":
            if operation_id in ("createCode", "openDoor") and id_like(path.get("intercom")):
                path["intercom"] = t.intercom_id
            if operation_id == "createCode" and isinstance(body, dict):
                body = self._clamp_expiry(body)
            if operation_id == "deleteCodes" and not o.allow_destructive and isinstance(body, dict):
                body = self._own_code_ids(body)
        elif self.api == "seam":
            if operation_id == "deleteAccessCode" and not o.allow_destructive:
                value = path.get("access_code_id")
                if uuid_like(value) and str(value).strip().lower() != str(t.disposable_code_id).lower():
                    path["access_code_id"] = t.disposable_code_id
        elif self.api == "magicline":
            if operation_id in GRANTING_OPERATIONS["magicline"] and id_like(path.get("customerId")):
                path["customerId"] = t.customer_id
            if operation_id in ("updateAccessMediums", "deleteAccessMediums") and not o.allow_destructive:
                customer, medium = path.get("customerId"), path.get("accessMediumId")
                if (id_like(customer) or id_like(medium)) and not self.ledger.owns("medium", medium, customer):
                    owned = self._next_owned("medium")
                    if owned is None:
                        raise SafetyRefusal(f"{operation_id}: no access medium of this run to use")
                    path["customerId"], path["accessMediumId"] = owned.parent, owned.ident
        return body

    def _clamp_expiry(self, body: dict[str, Any]) -> dict[str, Any]:
        value = body.get("expired_at")
        if not isinstance(value, str):
            return body
        try:
            moment = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        except ValueError:
            return body
        earliest = shortest_expiry(self.clock.now())
        # Past dates stay: the server must refuse them. Later ones are cut to the shortest allowed.
        if moment > earliest:
            body = {**body, "expired_at": earliest.strftime("%Y-%m-%d %H:%M")}
        return body

    def _own_code_ids(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = body.get("ids")
        if not isinstance(ids, list):
            return body
        replaced = []
        for value in ids:
            if id_like(value) and not self.ledger.owns("vms_code", int(str(value).strip().lstrip("+"))):
                owned = self._next_owned("vms_code")
                if owned is None:
                    raise SafetyRefusal("deleteCodes: no code of this run to delete")
                value = owned.ident
            replaced.append(value)
        return {**body, "ids": replaced}

    # -------------------------------------------------------------- bookkeeping

    def observe(
        self, operation_id: str | None, method: str, path: dict[str, Any], request_body: Any, status: int, body: Any
    ) -> None:
        """Learn what a request created or deleted, whoever sent it."""
        if not 200 <= status < 300:
            return
        if self.api == "vms":
            if operation_id == "createCode" and isinstance(body, dict) and "id" in body:
                self.ledger.add("vms_code", body["id"], parent=path.get("intercom"), body=body)
            elif operation_id == "deleteCodes" and isinstance(request_body, dict):
                for ident in request_body.get("ids") or []:
                    # a broken server may "delete" malformed ids; only real ids can name a code
                    if isinstance(ident, int) and not isinstance(ident, bool):
                        self.ledger.mark_deleted("vms_code", ident)
        elif self.api == "magicline":
            if operation_id in GRANTING_OPERATIONS["magicline"] and isinstance(body, dict) and "id" in body:
                self.ledger.add("medium", body["id"], parent=path.get("customerId"), body=body)
            elif operation_id == "deleteAccessMediums":
                self.ledger.mark_deleted("medium", path.get("accessMediumId"))
        elif self.api == "seam" and operation_id == "deleteAccessCode":
            self.ledger.mark_deleted("seam_code", path.get("access_code_id"))


class SafetyRefusal(RuntimeError):
    """A generated request could not be made safe, so it is not sent."""


# ---------------------------------------------------------------------------------------------- hooks


@dataclass
class _Guard:
    policy: SafetyPolicy
    throttle: Throttle


_GUARDS: dict[int, _Guard] = {}


class installed:
    """Put a policy in force for one loaded Schemathesis schema while the block runs."""

    def __init__(self, schema: Any, policy: SafetyPolicy, throttle: Throttle) -> None:
        self.key = id(schema)
        self.guard = _Guard(policy, throttle)

    def __enter__(self) -> installed:
        _GUARDS[self.key] = self.guard
        return self

    def __exit__(self, *exc: object) -> None:
        _GUARDS.pop(self.key, None)


def _operation_id(case: Any) -> str | None:
    raw = getattr(case.operation.definition, "raw", None)
    return raw.get("operationId") if isinstance(raw, dict) else None


# Global hooks: `before_call` has no narrower scope in Schemathesis 4. They do nothing for a schema that is not
# ours, so loading this module does not change other Schemathesis users in the same process.
@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    guard = _GUARDS.get(id(case.operation.schema))
    if guard is None:
        return
    body = case.body if isinstance(case.body, (dict, list)) else None
    safe_body = guard.policy.prepare(_operation_id(case), case.path_parameters, body)
    if body is not None and safe_body is not body:
        case.body = safe_body
    guard.throttle.wait()


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    guard = _GUARDS.get(id(case.operation.schema))
    if guard is None:
        return
    date = response.headers.get("date")
    guard.policy.clock.observe(date[0] if isinstance(date, list) and date else None)
    try:
        body = response.json()
    except Exception:  # the body is judged by the checks; here it only feeds the ledger
        body = None
    guard.policy.observe(
        _operation_id(case),
        case.method,
        case.path_parameters,
        case.body if isinstance(case.body, dict) else None,
        response.status_code,
        body,
    )


# ---------------------------------------------------------------------------------------------- cleanup


def cleanup(api: str, client: ApiClient, ledger: Ledger) -> list[str]:
    """Remove everything this run created and is still there; returns notes about what could not be removed."""
    notes: list[str] = []
    if api == "vms":
        live = [item.ident for item in ledger.items("vms_code", live=True)]
        for start in range(0, len(live), VMS_BULK_LIMIT):
            chunk = live[start : start + VMS_BULK_LIMIT]
            exchange = client.delete("/api/v1/intercom/codes", json_body={"ids": chunk})
            if exchange.status == 204:
                for ident in chunk:
                    ledger.mark_deleted("vms_code", ident)
                continue
            # All or nothing: one id already gone refuses the lot, so fall back to one at a time.
            for ident in chunk:
                single = client.delete("/api/v1/intercom/codes", json_body={"ids": [ident]})
                if single.status in (204, 422):
                    ledger.mark_deleted("vms_code", ident)
                else:
                    notes.append(f"could not delete code {ident} this run created (HTTP {single.status})")
    elif api == "magicline":
        for item in ledger.items("medium", live=True):
            exchange = client.delete(f"/v1/customers/{item.parent}/access-mediums/{item.ident}")
            if exchange.status in (200, 204, 404):
                ledger.mark_deleted("medium", item.ident)
            else:
                notes.append(
                    f"could not delete access medium {item.ident} of customer {item.parent} "
                    f"this run created (HTTP {exchange.status})"
                )
    return notes


def exchange_path_params(contract: Contract, exchange: Exchange) -> dict[str, str]:
    """The path parameters of one of our own requests, by the contract's names."""
    if exchange.operation_id is None:
        return {}
    template = contract.operation(exchange.operation_id).path
    names = re.findall(r"\{([^}]+)\}", template)
    regex = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template))
    match = re.fullmatch(regex + "/?", exchange.path)
    return dict(zip(names, match.groups(), strict=False)) if match else {}


def ceil_minutes(seconds: float) -> int:
    return math.ceil(seconds / 60)
