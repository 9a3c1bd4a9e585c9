"""The Schemathesis hooks that put a run's rules on the cases Schemathesis generates: each request is made safe
and paced before it is sent (`before_call`), and its answer teaches the ledger and the server clock
(`after_call`). The registered response checks find the run of a case here too (`session_for`).

The hooks are global in Schemathesis 4 (`before_call` has no narrower scope); they do nothing for a schema that is
not one of a run's, so loading this module does not change other Schemathesis users in the same process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import schemathesis

if TYPE_CHECKING:
    from .session import Session

__all__ = ["installed", "operation_id", "session_for"]

_RUNS: dict[int, Session] = {}


class installed:
    """Put a session's rules in force for one loaded Schemathesis schema while the block runs."""

    def __init__(self, schema: Any, session: Session) -> None:
        self.key = id(schema)
        self.session = session

    def __enter__(self) -> installed:
        _RUNS[self.key] = self.session
        return self

    def __exit__(self, *exc: object) -> None:
        _RUNS.pop(self.key, None)


def session_for(case: Any) -> Session | None:
    """The run a generated case belongs to, or None (a schema that is not one of a run's)."""
    return _RUNS.get(id(case.operation.schema))


def operation_id(case: Any) -> str | None:
    raw = getattr(case.operation.definition, "raw", None)
    return raw.get("operationId") if isinstance(raw, dict) else None


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    session = session_for(case)
    if session is None:
        return
    body = case.body if isinstance(case.body, (dict, list)) else None
    safe_body = session.policy.prepare(operation_id(case), case.path_parameters, body)
    if body is not None and safe_body is not body:
        case.body = safe_body
    session.throttle.wait()


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    session = session_for(case)
    if session is None:
        return
    date = response.headers.get("date")
    session.clock.observe(date[0] if isinstance(date, list) and date else None)
    if not 200 <= response.status_code < 300:
        return
    try:
        body = response.json()
    except Exception:  # the body is judged by the checks; here it only feeds the ledger
        body = None
    session.profile.observe(
        session.ledger,
        operation_id(case),
        case.path_parameters or {},
        case.body if isinstance(case.body, dict) else None,
        body,
    )
