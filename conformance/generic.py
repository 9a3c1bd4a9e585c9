"""The generic contract run: Schemathesis 4 configured for one target (auth, safety, expected statuses, seed),
and its events turned into ours. This is the one module that knows Schemathesis' engine, events and recorder.

Documented answers that a generic check would count as failures are declared per operation as expected statuses
(never by switching a check off): a 422 for a domain rule, a 400 for a duplicate value, Seam's documented 500s,
Magicline's 503 under load (each vendor profile lists them). In the default vendor view a failure that only
differs from a mock choice becomes a note (`conformance.judging`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events as st_events
from schemathesis.engine import from_schema

from . import checks  # noqa: F401 - registers the domain checks with Schemathesis
from .events import Event, Finding, Note, Outcome, RequestView, StageFinished, StageStarted
from .failures import ConformanceFailure
from .hooks import installed
from .judging import difference
from .redact import Redactor
from .session import Session

__all__ = ["run_schemathesis", "schemathesis_config"]

POSITIVE_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
SERVER_ERRORS_ACCEPTED = ["2xx", "3xx", "4xx"]


def _operations(session: Session, excluded: dict[str, str]) -> list[dict[str, Any]]:
    vendor = session.profile
    result: list[dict[str, Any]] = []
    for operation_id in session.contract.operations:
        if operation_id in excluded:
            result.append({"include-operation-id": operation_id, "enabled": False})
            continue
        entry: dict[str, Any] = {}
        refusals = vendor.domain_refusals.get(operation_id)
        if refusals:
            entry.setdefault("checks", {})["positive_data_acceptance"] = {
                "expected-statuses": POSITIVE_ACCEPTED + refusals
            }
        errors = vendor.documented_server_errors.get(operation_id) or vendor.documented_server_errors.get("*")
        if errors:
            entry.setdefault("checks", {})["not_a_server_error"] = {
                "expected-statuses": SERVER_ERRORS_ACCEPTED + errors
            }
        if operation_id in vendor.gentle_operations:
            entry["rate-limit"] = "100000/s"
            entry["generation"] = {"max-examples": 2}
            entry["phases"] = {"coverage": {"enabled": False}}
        if entry:
            result.append({"include-operation-id": operation_id, **entry})
    return result


#: failures after which a `run` stops asking Schemathesis for more
MAX_FAILURES = 25


def _linked(session: Session, excluded: dict[str, str]) -> bool:
    """Whether any link joins two operations that get generated cases (Schemathesis' stateful phase needs one)."""
    for operation in session.contract.operations.values():
        if operation.operation_id in excluded:
            continue
        for response in operation.raw.get("responses", {}).values():
            for link in (response.get("links") or {}).values() if isinstance(response, dict) else ():
                if isinstance(link, dict) and link.get("operationId") not in excluded:
                    return True
    return False


def schemathesis_config(session: Session, *, mode: str, seed: int, max_time: int | None = None) -> SchemathesisConfig:
    options = session.options
    excluded = session.policy.excluded(session.contract)
    phases: dict[str, dict[str, Any]] = {
        name: {"enabled": name in options.schemathesis_phases}
        for name in ("examples", "coverage", "fuzzing", "stateful")
    }
    if not _linked(session, excluded):
        phases["stateful"]["enabled"] = False
    phases["stateful"]["max-steps"] = max(2, options.max_steps)
    data: dict[str, Any] = {
        "seed": seed,
        "cache": {"enabled": False},
        "base-url": session.target.base_url,
        "auth": session.profile.schemathesis_auth(session.identity),
        "workers": 1,
        "continue-on-failure": True,
        "request-timeout": options.request_timeout,
        "rate-limit": "auto",
        # A verdict needs no minimal example, and shrinking a failing stateful run can take minutes: `run` stays
        # bounded; `fuzz` shrinks what it finds.
        "generation": {
            "deterministic": mode == "run",
            "max-examples": options.max_examples,
            "no-shrink": mode == "run",
        },
        "phases": phases,
        "operations": _operations(session, excluded),
    }
    if max_time:
        data["max-time"] = max_time
    if mode == "run":
        # A broken server can fail in new words on every stateful pass, and Schemathesis keeps looking while it
        # finds new failures; a verdict needs a handful, so a bounded run stops collecting there.
        data["max-failures"] = MAX_FAILURES
        # Schemathesis' error feedback learns from the fuzzing phase's 4xx answers and steers later generation
        # away from what was refused. Against VMS's Laravel validation errors that filtering made the stateful
        # phase reject most drawn scenarios and draw again: 459 scenarios (12 s) where `--max-examples 3` asks for
        # 3 (1.6 s). A bounded run keeps its budget; `fuzz` keeps the feedback.
        phases["fuzzing"]["error-feedback"] = {"enabled": False}
    return SchemathesisConfig.from_dict(data)


def _request_view(redactor: Redactor, request: Any) -> RequestView:
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return RequestView(
        method=request.method,
        url=redactor.text(request.uri),
        headers=tuple(
            (name, redactor.header(name, values[0] if isinstance(values, list) else str(values)))
            for name, values in request.headers.items()
        ),
        body=redactor.text(body) if body else None,
    )


def _finding(session: Session, recorder: Any, case_id: str, name: str, failure: Any, stage: str, seed: int) -> Finding:
    redactor = session.redactor
    failing_id = failure.case_id or case_id
    chain = [
        case.id for case in recorder.iter_chain_cases(case_id=failing_id, related_case_ids=failure.related_case_ids())
    ]
    if failing_id not in chain:
        chain.append(failing_id)
    requests = tuple(
        _request_view(redactor, recorder.interactions[c].request) for c in chain if c in recorder.interactions
    )
    interaction = recorder.interactions.get(failing_id)
    response = interaction.response if interaction is not None else None
    node = recorder.cases.get(failing_id) or recorder.cases.get(case_id)
    operation = failure.operation or (node.value.operation.label if node else "")
    text = response.content.decode("utf-8", "replace")[:500] if response is not None and response.content else ""
    return Finding(
        target=session.target.name,
        check=getattr(failure, "check", None) or name,
        operation=operation,
        title=redactor.text(failure.title),
        message=redactor.text(failure.message),
        requests=requests,
        status=response.status_code if response is not None else None,
        response=redactor.text(text),
        seed=seed,
        stage=stage,
        code=failure.code,
    )


def _outcomes(session: Session, recorder: Any, stage: str, seed: int) -> Iterator[Outcome]:
    passed: dict[tuple[str, str], int] = {}
    failed: dict[tuple[str, str], list[Finding]] = {}
    for case_id, nodes in recorder.checks.items():
        case_node = recorder.cases.get(case_id)
        label = case_node.value.operation.label if case_node is not None else recorder.label
        for node in nodes:
            key = (node.name, label)
            if node.failure_info is not None:
                note = _difference(session, recorder, case_id, node.name, node.failure_info.failure)
                if note is not None:
                    session.deviate(node.name, label, note)
                    continue
                finding = _finding(session, recorder, case_id, node.name, node.failure_info.failure, stage, seed)
                failed.setdefault((finding.check, finding.operation), []).append(finding)
            elif str(node.status) == "success":
                passed[key] = passed.get(key, 0) + 1
    for (check, operation), findings in failed.items():
        for finding in findings:
            yield Outcome(session.target.name, check, operation, "failed", passed.pop((check, operation), 0), finding)
    for (check, operation), count in passed.items():
        yield Outcome(session.target.name, check, operation, "passed", count)


def _difference(session: Session, recorder: Any, case_id: str, check: str, failure: Any) -> str | None:
    """A note's words when a generic failure only differs from a mock choice (see `conformance.judging`)."""
    if session.strict or isinstance(failure, ConformanceFailure):
        return None
    interaction = recorder.interactions.get(failure.case_id or case_id)
    if interaction is None:
        return None
    request, response = interaction.request, interaction.response
    headers = {name: values[0] if isinstance(values, list) else str(values) for name, values in request.headers.items()}
    body = request.body.encode() if isinstance(request.body, str) else request.body
    return difference(
        session,
        check,
        method=request.method,
        url=request.uri,
        headers=headers,
        body=body,
        status=response.status_code if response is not None else None,
        response=(response.content or b"") if response is not None else b"",
    )


def run_schemathesis(session: Session, *, mode: str, seed: int, max_time: int | None = None) -> Iterator[Event]:
    """Run Schemathesis' phases against the target; yields our events."""
    name = session.target.name
    excluded = session.policy.excluded(session.contract)
    for operation_id, reason in excluded.items():
        label = session.contract.operation(operation_id).label
        yield Note(name, f"{label} ({operation_id}) gets no generated cases: {reason}")
    config = schemathesis_config(session, mode=mode, seed=seed, max_time=max_time)
    schema = schemathesis.openapi.from_dict(session.contract.prepared(), config=config)
    schema.hook("filter_failure")(
        lambda context, failure, case, response: session.profile.keeps_failure(failure.code, case.method.upper())
    )
    stage = "schemathesis"
    with installed(schema, session):
        for event in from_schema(schema).execute():
            if isinstance(event, st_events.PhaseStarted):
                stage = f"schemathesis {event.phase.name.value}"
                yield StageStarted(name, stage)
            elif isinstance(event, st_events.PhaseFinished):
                yield StageFinished(name, f"schemathesis {event.phase.name.value}", 0.0)
            elif isinstance(event, (st_events.ScenarioFinished, st_events.FuzzScenarioFinished)):
                yield from _outcomes(session, event.recorder, stage, seed)
            elif isinstance(event, st_events.NonFatalError):
                message = session.redactor.text(f"{event.info.title}: {event.info.message}")
                yield Outcome(name, "schemathesis", event.label, "error", note=message)
            elif isinstance(event, st_events.FatalError):
                raise GenericRunError(session.redactor.text(f"Schemathesis stopped: {event.exception}"))


class GenericRunError(RuntimeError):
    """Schemathesis could not run at all."""
