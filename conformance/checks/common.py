"""What the vendor checks share: one view of a response (`Observation`), the registry of response checks (each
also registered as a Schemathesis check), and the paging and expiry invariants.

A response check is a function `(Observation) -> None` that raises a typed failure. It runs on every response
Schemathesis gets and on every response our own scenarios get, so a rule is written once.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import schemathesis

from mockserver.contracts import API_MARKER, Contract, Operation, load_contract, marks_of, resolve

from ..deviations import ChoiceDeviation
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
    #: the run it belongs to (its contract view and its notes); None judges by the contract as written
    session: Any = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def server_time(self) -> datetime | None:
        return http_date(self.headers.get("date"))

    @property
    def contract(self) -> Contract:
        """The view the observation is judged by."""
        return self.session.contract if self.session is not None else load_contract(self.api)

    @property
    def operation(self) -> Operation | None:
        return self.contract.operations.get(self.operation_id or "")

    def deviate(self, check: str, message: str) -> None:
        """The server differs from a mock choice: a note in a run's vendor view, else a failure (raised)."""
        if self.session is not None:
            self.session.deviate(check, self.label, message)
        else:
            raise ChoiceDeviation(check=check, operation=self.label, message=message)


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


def observation_from_case(api: str, case: Any, response: Any, session: Any = None) -> Observation:
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
        session=session,
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
        from ..hooks import session_for

        registered.func(observation_from_case(registered.api, case, response, session_for(case)))
        return None

    adapter.__name__ = registered.name
    adapter.__qualname__ = registered.name
    adapter.__doc__ = registered.doc
    return adapter


def response_check(api: str) -> Callable[[ResponseCheck], ResponseCheck]:
    """Register a response check for one API, or for all three (`"*"`), also with Schemathesis under the
    function's name."""

    def decorate(func: ResponseCheck) -> ResponseCheck:
        for name in RESPONSE_CHECKS if api == "*" else (api,):
            registered = RegisteredCheck(func.__name__, name, func, (func.__doc__ or "").strip())
            if all(item.name != registered.name for item in RESPONSE_CHECKS[name]):
                RESPONSE_CHECKS[name].append(registered)
        if api != "*":
            schemathesis.check(_schemathesis_adapter(RESPONSE_CHECKS[api][-1]))
        else:
            schemathesis.check(_any_api_adapter(func))
        return func

    return decorate


def _any_api_adapter(func: ResponseCheck) -> Callable[..., bool | None]:
    def adapter(ctx: Any, response: Any, case: Any) -> bool | None:
        api = case.operation.schema.raw_schema.get(API_MARKER)
        if api not in RESPONSE_CHECKS:
            return True
        from ..hooks import session_for

        func(observation_from_case(api, case, response, session_for(case)))
        return None

    adapter.__name__ = adapter.__qualname__ = func.__name__
    adapter.__doc__ = func.__doc__
    return adapter


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


def expiry_problems(code: dict[str, Any], now: datetime | None, *, listed: bool = True) -> tuple[list[str], list[str]]:
    """Problems with a VMS code's expiry fields: (`will_deleted_at` problems, `is_expired` problems). A code
    ``listed`` must not outlive its `will_deleted_at`; a create may answer a code born expired and already due
    to go (a server that takes an expiry in the past)."""
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
    if expires is not None and now is not None and deleted is not None and now > deleted + EXPIRY_TOLERANCE and listed:
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
    if not isinstance(total, int) or not isinstance(last_page, int):
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


def slice_problems(
    body: Any, *, slice_size: int, after: int | None, status: str | None, cursor: str | None = None
) -> tuple[list[str], list[str]]:
    """What is wrong with one Magicline customer slice, judged on its own: (problems by the documents, problems by
    the mock's choices: id order and, with ``cursor`` "last-id", an offset that is the last customer's id)."""
    if not isinstance(body, dict) or not isinstance(body.get("result"), list):
        return [], []
    found: list[str] = []
    chosen: list[str] = []
    ids = [item.get("id") for item in body["result"] if isinstance(item, dict)]
    if len(ids) > slice_size:
        found.append(f"the slice holds {len(ids)} customers, more than sliceSize {slice_size}")
    if len(set(map(str, ids))) != len(ids):
        found.append(f"the slice holds a customer twice: {ids}")
    if status is not None:
        # `status` is the mock's field; a server that names it otherwise is judged by the walk, not here.
        wrong = [
            item.get("id")
            for item in body["result"]
            if isinstance(item, dict) and item.get("status") is not None and item.get("status") != status
        ]
        if wrong:
            found.append(f"customerStatus={status} answered customers of another status: {wrong}")
    numbers = [i for i in ids if isinstance(i, int)]
    if len(numbers) != len(ids):
        return found, chosen
    if numbers != sorted(numbers):
        chosen.append("customer ids in a slice are not ascending (the mock orders by id)")
    if cursor == "last-id":
        if after is not None and numbers and numbers[0] <= after:
            chosen.append("a slice does not start after the customer id its offset names")
        offset = body.get("offset")
        if ids and str(offset) != str(ids[-1]):
            chosen.append("offset is not the slice's last customer id (the mock's cursor)")
    return found, chosen


def raise_paging(check: str, operation: str, problems: list[str]) -> None:
    if problems:
        raise PagingBroken(check=check, operation=operation, message="\n".join(problems))


# ---------------------------------------------------------------------------------------------- mock choices


@response_check("*")
def mock_choice_status(observation: Observation) -> None:
    """A status the vendor documents only by its class (the mock chose one) may differ from the mock's: a note."""
    operation = observation.operation
    if operation is None or observation.contract.strict or observation.status in operation.statuses:
        return
    chosen = sorted(s for s in operation.mock_choice if s // 100 == observation.status // 100)
    if chosen:
        observation.deviate(
            "mock_choice_status",
            f"answered {observation.status} where the mock chose {' or '.join(map(str, chosen))}",
        )


@response_check("*")
def mock_choice_security(observation: Observation) -> None:
    """An operation the mock answers without credentials, by its choice, may ask for them: such a 401 is a note."""
    if observation.status != 401 or not answers_without_token(observation.api, observation.operation_id):
        return
    observation.deviate("mock_choice_security", "asks for a token where the mock answers without one")


def answers_without_token(api: str, operation_id: str | None) -> bool:
    """Whether the contract as written answers the operation without credentials, by one of the mock's choices."""
    written = load_contract(api).operations.get(operation_id or "")
    if written is None or written.raw.get("security") != []:
        return False
    return any("security" in (mark.get("keywords") or ()) for mark in marks_of(written.raw))


@response_check("*")
def mock_choice_body(observation: Observation) -> None:
    """A body that differs from the mock's choices (a date in another form, an error id in other words) but not
    from the vendor's documents: a note."""
    operation = observation.operation
    if operation is None or observation.contract.strict or not _has_marked_schema(observation, operation):
        return
    session = observation.session
    if session is not None and not session.deviations.sample((operation.operation_id, observation.status), 25):
        return  # each kind of answer is compared a few times: enough to see a difference, without the cost
    from ..openapi_check import validator_for

    problems = validator_for(load_contract(observation.api)).response_problems(
        observation.method, observation.path, observation.status, headers=observation.headers, body=observation.content
    )
    for brief in sorted({problem.brief for problem in problems if problem.marked}):
        observation.deviate("mock_choice_body", f"differs from the mock's choice at {brief}")


def _has_marked_schema(observation: Observation, operation: Operation) -> bool:
    return (observation.api, operation.operation_id, observation.status) in _marked_responses(observation.api)


@functools.cache
def _marked_responses(api: str) -> frozenset[tuple[str, str, int]]:
    """(api, operation, status) whose response schema, as written, holds a mark: only those can differ."""
    found = set()
    for operation in load_contract(api).operations.values():
        for status, response in operation.raw.get("responses", {}).items():
            # Error bodies are each vendor's error-body check's to judge.
            if str(status).isdigit() and int(status) < 400 and _holds_mark(response, operation.components, set()):
                found.add((api, operation.operation_id, int(status)))
    return frozenset(found)


def _holds_mark(node: Any, components: dict[str, Any], seen: set[str]) -> bool:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                return False
            seen.add(ref)
            return _holds_mark(resolve(node, components), components, seen)
        if any(mark.get("keywords") for mark in marks_of(node)):
            return True
        return any(_holds_mark(value, components, seen) for key, value in node.items() if key != "x-mock-choice")
    if isinstance(node, list):
        return any(_holds_mark(value, components, seen) for value in node)
    return False


def order_problem(values: list[Any], operation: Operation) -> str | None:
    """How a list's order breaks the operation's `x-order` as written (e.g. "ordered by id, descending"), or None.
    ``values`` are the items' `by` field, in the order the server answered them."""
    order = operation.extension("x-order")
    if not isinstance(order, dict) or not all(isinstance(v, int) for v in values):
        return None
    descending = order.get("direction") == "descending"
    wanted = sorted(values, reverse=descending)
    if values != wanted:
        return f"ordered by {order.get('by')}, {order.get('direction')} (as the mock orders it)"
    return None
