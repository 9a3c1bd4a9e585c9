"""What the vendor checks share: one view of a response (`Observation`), the registry of response checks (each
also registered as a Schemathesis check), and the paging and expiry invariants.

A response check is a function `(Observation) -> None` that raises a typed failure. It runs on every response
Schemathesis gets and on every response our own scenarios get, so a rule is written once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import schemathesis

from ..contract import API_MARKER
from ..failures import ExpiryMismatch, PagingBroken

__all__ = [
    "RESPONSE_CHECKS",
    "Observation",
    "ResponseCheck",
    "expiry_problems",
    "laravel_page_problems",
    "response_check",
    "run_response_checks",
    "slice_problems",
]


@dataclass(frozen=True)
class Observation:
    """One response and the request that caused it, as the checks need them."""

    api: str
    operation_id: str | None
    method: str
    path: str
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    path_params: dict[str, Any] = field(default_factory=dict)
    request_body: Any = None
    content: bytes = b""

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def server_time(self) -> datetime | None:
        return http_date(self.headers.get("date"))

    @property
    def is_json(self) -> bool:
        return "json" in self.headers.get("content-type", "")


def http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        return None


def observation_from_case(api: str, case: Any, response: Any) -> Observation:
    raw = getattr(case.operation.definition, "raw", {}) or {}
    # A probe with an undeclared method (e.g. PUT /health) is not the operation it was derived from.
    declared = case.operation.method.upper() == case.method.upper()
    headers = {k: (v[0] if isinstance(v, list) and v else v) for k, v in response.headers.items()}
    return Observation(
        api=api,
        operation_id=raw.get("operationId") if declared else None,
        method=case.method.upper(),
        path=case.operation.path,
        status=response.status_code,
        body=_json(response.content),
        headers={k.lower(): str(v) for k, v in headers.items()},
        query=dict(case.query or {}),
        path_params=dict(case.path_parameters or {}),
        request_body=case.body if isinstance(case.body, (dict, list)) else None,
        content=response.content or b"",
    )


# ---------------------------------------------------------------------------------------------- registry

ResponseCheck = Callable[[Observation], None]


@dataclass(frozen=True)
class RegisteredCheck:
    name: str
    api: str
    func: ResponseCheck
    doc: str


#: api -> its response checks, in registration order
RESPONSE_CHECKS: dict[str, list[RegisteredCheck]] = {"vms": [], "seam": [], "magicline": []}


def _schemathesis_adapter(registered: RegisteredCheck) -> Callable[..., bool | None]:
    def adapter(ctx: Any, response: Any, case: Any) -> bool | None:
        if case.operation.schema.raw_schema.get(API_MARKER) != registered.api:
            return True  # not applicable: another contract
        registered.func(observation_from_case(registered.api, case, response))
        return None

    adapter.__name__ = registered.name
    adapter.__qualname__ = registered.name
    adapter.__doc__ = registered.doc
    return adapter


def response_check(api: str) -> Callable[[ResponseCheck], ResponseCheck]:
    """Register a response check for one API (and with Schemathesis, under the function's name)."""

    def decorate(func: ResponseCheck) -> ResponseCheck:
        registered = RegisteredCheck(func.__name__, api, func, (func.__doc__ or "").strip())
        if all(item.name != registered.name for item in RESPONSE_CHECKS[api]):
            RESPONSE_CHECKS[api].append(registered)
            schemathesis.check(_schemathesis_adapter(registered))
        return func

    return decorate


def run_response_checks(observation: Observation) -> Iterable[tuple[str, BaseException | None]]:
    """Run every response check of the observation's API; yields (check name, failure or None)."""
    for registered in RESPONSE_CHECKS[observation.api]:
        try:
            registered.func(observation)
        except AssertionError as failure:
            yield registered.name, failure
        else:
            yield registered.name, None


# ---------------------------------------------------------------------------------------------- expiry

VMS_FORMAT = "%Y-%m-%d %H:%M:%S"
#: how close to `expired_at` a server's clock may be before `is_expired` may go either way
EXPIRY_TOLERANCE = timedelta(seconds=90)


def parse_vms_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, VMS_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def expiry_problems(code: dict[str, Any], now: datetime | None) -> tuple[list[str], list[str]]:
    """Problems with a VMS code's expiry fields: (`will_deleted_at` problems, `is_expired` problems)."""
    deletion, expired = [], []
    expires = parse_vms_time(code.get("expired_at"))
    deleted = parse_vms_time(code.get("will_deleted_at"))
    if expires is not None and deleted is not None and deleted - expires != timedelta(hours=24):
        deletion.append(
            f"code {code.get('id')}: will_deleted_at {code.get('will_deleted_at')} is not expired_at "
            f"{code.get('expired_at')} + 24 h"
        )
    flag = code.get("is_expired")
    if (
        expires is not None
        and now is not None
        and isinstance(flag, bool)
        and abs(now - expires) > EXPIRY_TOLERANCE
        and flag != (now >= expires)
    ):
        expired.append(
            f"code {code.get('id')}: is_expired is {str(flag).lower()} but the server's clock "
            f"({now:%Y-%m-%d %H:%M:%S}) is {'past' if now >= expires else 'before'} expired_at "
            f"{code.get('expired_at')}"
        )
    if expires is not None and now is not None and deleted is not None and now > deleted + EXPIRY_TOLERANCE:
        expired.append(
            f"code {code.get('id')} is still answered after its will_deleted_at "
            f"{code.get('will_deleted_at')} (server clock {now:%Y-%m-%d %H:%M:%S})"
        )
    return deletion, expired


def raise_expiry(check: str, operation: str, problems: list[str]) -> None:
    if problems:
        raise ExpiryMismatch(check=check, operation=operation, message="\n".join(problems))


# ---------------------------------------------------------------------------------------------- paging

PREVIOUS_LABEL = "pagination.previous"
NEXT_LABEL = "pagination.next"


def _page_of(url: Any) -> int | None:
    """The `page` query value of a paginator link."""
    if not isinstance(url, str):
        return None
    values = parse_qs(urlsplit(url).query).get("page")
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


def laravel_page_problems(body: Any, *, page: int, per_page: int) -> list[str]:
    """What is wrong with one Laravel paginator page (`data`, `links`, `meta`), judged on its own."""
    if not isinstance(body, dict):
        return []
    data, links, meta = body.get("data"), body.get("links"), body.get("meta")
    if not isinstance(data, list) or not isinstance(links, dict) or not isinstance(meta, dict):
        return []  # the schema check reports the shape
    found: list[str] = []
    total, last_page = meta.get("total"), meta.get("last_page")
    if not all(isinstance(v, int) for v in (total, last_page)):
        return found
    expected_last = max(1, -(-total // per_page))
    if meta.get("per_page") != per_page:
        found.append(f"meta.per_page is {meta.get('per_page')}, the request asked for {per_page}")
    if meta.get("current_page") != page:
        found.append(f"meta.current_page is {meta.get('current_page')}, the request asked for page {page}")
    if last_page != expected_last:
        found.append(f"meta.last_page is {last_page}, but total {total} / per_page {per_page} makes {expected_last}")
    start = (page - 1) * per_page
    expected_count = max(0, min(per_page, total - start))
    if len(data) != expected_count:
        found.append(
            f"page {page} holds {len(data)} items; total {total} and per_page {per_page} make {expected_count}"
        )
    expected_from = start + 1 if data else None
    expected_to = start + len(data) if data else None
    if meta.get("from") != expected_from:
        found.append(f"meta.from is {meta.get('from')}, expected {expected_from}")
    if meta.get("to") != expected_to:
        found.append(f"meta.to is {meta.get('to')}, expected {expected_to}")
    if _page_of(links.get("first")) != 1:
        found.append(f"links.first {links.get('first')!r} is not page 1")
    if _page_of(links.get("last")) != expected_last:
        found.append(f"links.last {links.get('last')!r} is not page {expected_last}")
    wanted_prev = page - 1 if page > 1 else None
    if _page_of(links.get("prev")) != wanted_prev:
        found.append(f"links.prev {links.get('prev')!r} should point to {wanted_prev or 'nothing (null)'}")
    wanted_next = page + 1 if page < expected_last else None
    if _page_of(links.get("next")) != wanted_next:
        found.append(f"links.next {links.get('next')!r} should point to {wanted_next or 'nothing (null)'}")
    found += _window_problems(meta.get("links"), page=page, last_page=expected_last)
    return found


def _window_problems(window: Any, *, page: int, last_page: int) -> list[str]:
    if not isinstance(window, list) or len(window) < 3 or not all(isinstance(i, dict) for i in window):
        return []
    found = []
    first, last = window[0], window[-1]
    if first.get("label") != PREVIOUS_LABEL:
        found.append(f"meta.links starts with label {first.get('label')!r}, not {PREVIOUS_LABEL!r}")
    if last.get("label") != NEXT_LABEL:
        found.append(f"meta.links ends with label {last.get('label')!r}, not {NEXT_LABEL!r}")
    if _page_of(first.get("url")) != (page - 1 if page > 1 else None):
        found.append(f"the {PREVIOUS_LABEL} link {first.get('url')!r} does not point to the previous page")
    if _page_of(last.get("url")) != (page + 1 if page < last_page else None):
        found.append(f"the {NEXT_LABEL} link {last.get('url')!r} does not point to the next page")
    numbered = [item for item in window[1:-1] if item.get("label") != "..."]
    for item in numbered:
        label = str(item.get("label"))
        if not label.isdigit():
            found.append(f"meta.links holds a label {label!r} that is neither a page number nor '...'")
            continue
        if _page_of(item.get("url")) != int(label):
            found.append(f"the meta.links entry for page {label} points to {item.get('url')!r}")
        if bool(item.get("active")) != (int(label) == page):
            found.append(f"the meta.links entry for page {label} has active={item.get('active')}")
        if int(label) > last_page:
            found.append(f"meta.links offers page {label} beyond the last page {last_page}")
    labels = [int(item["label"]) for item in numbered if str(item.get("label")).isdigit()]
    if labels != sorted(set(labels)):
        found.append(f"meta.links page labels {labels} are not ascending and unique")
    if page <= last_page and labels and page not in labels:
        found.append(f"meta.links does not offer the current page {page}")
    if labels and (labels[0] != 1 or labels[-1] != last_page):
        found.append(f"meta.links does not run from page 1 to the last page {last_page}: {labels}")
    return found


def slice_problems(body: Any, *, slice_size: int, after: int | None, status: str | None) -> list[str]:
    """What is wrong with one Magicline customer slice, judged on its own."""
    if not isinstance(body, dict) or not isinstance(body.get("result"), list):
        return []
    found: list[str] = []
    ids = [item.get("id") for item in body["result"] if isinstance(item, dict)]
    if len(ids) > slice_size:
        found.append(f"the slice holds {len(ids)} customers, more than sliceSize {slice_size}")
    if any(not isinstance(i, int) for i in ids):
        return found
    if ids != sorted(ids) or len(set(ids)) != len(ids):
        found.append(f"customer ids in the slice are not strictly ascending: {ids}")
    if after is not None and ids and ids[0] <= after:
        found.append(f"the slice after offset {after} starts at customer {ids[0]}")
    offset = body.get("offset")
    if ids and str(offset) != str(ids[-1]):
        found.append(f"offset is {offset!r} but the slice's last customer is {ids[-1]}")
    if status is not None:
        wrong = [item.get("id") for item in body["result"] if isinstance(item, dict) and item.get("status") != status]
        if wrong:
            found.append(f"customerStatus={status} answered customers of another status: {wrong}")
    return found


def raise_paging(check: str, operation: str, problems: list[str]) -> None:
    if problems:
        raise PagingBroken(check=check, operation=operation, message="\n".join(problems))
