"""A conformance run of one target, as a stream of events. No printing, no click: the CLI, the pytest plugin and
the reports consume what `run` and `fuzz` yield.

A run: open a session (log in, discover ids; a failure here ends the run with an error), prepare a few resources
of our own (so generated writes have something safe to touch), the multi-call scenarios, the generic
Schemathesis phases, the state machines, and the clean-up, which also runs when the consumer stops early.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

from mockserver.contracts import ContractError

from .checks.common import Observation, run_response_checks
from .client import Exchange, Unreachable
from .events import Event, Finding, Note, Outcome, RequestView, RunFinished, RunStarted, StageFinished, StageStarted
from .failures import ConformanceFailure
from .generic import GenericRunError, run_schemathesis
from .policy import SafetyRefusal
from .redact import Redactor
from .scenarios import SCENARIOS, ScenarioContext, ScenarioSkipped
from .session import RunAborted, Session, open_session
from .stateful import describe_error, run_machine
from .target import Options, Target

__all__ = ["fuzz", "run"]


def run(target: Target, options: Options | None = None) -> Iterator[Event]:
    """A bounded, repeatable run (fixed seed, deterministic generation)."""
    return _execute(target, options or Options(), mode="run")


def fuzz(target: Target, options: Options | None = None) -> Iterator[Event]:
    """Keep generating for `options.max_time` seconds (default 600) with a fresh seed unless one is given."""
    options = options or Options()
    return _execute(target, options, mode="fuzz")


def request_view(redactor: Redactor, exchange: Exchange) -> RequestView:
    record = exchange.request
    body = record.body.decode("utf-8", "replace") if record.body else None
    return RequestView(
        method=record.method,
        url=redactor.text(record.url),
        headers=tuple((n, redactor.header(n, v)) for n, v in record.headers),
        body=redactor.text(body) if body else None,
    )


class ResponseChecker:
    """Runs the API's response checks on every exchange our own steps make; collects outcomes."""

    def __init__(self, target: Target, seed: int) -> None:
        self.target = target
        self.seed = seed
        self.session: Session | None = None
        self.stage = ""
        self._lock = threading.Lock()
        self._passed: dict[tuple[str, str], int] = {}
        self._failed: list[Finding] = []

    def __call__(self, exchange: Exchange) -> None:
        session = self.session
        if session is None:
            return
        operation = session.contract.operations.get(exchange.operation_id or "")
        observation = Observation(
            api=self.target.api,
            operation_id=exchange.operation_id,
            method=exchange.method,
            path=operation.path if operation else exchange.path,
            status=exchange.status,
            body=exchange.json(),
            headers=exchange.headers,
            query=exchange.query,
            path_params=operation.path_params(exchange.path) if operation else {},
            request_body=exchange.request_json,
            content=exchange.content,
            session=session,
        )
        for name, failure in run_response_checks(observation):
            with self._lock:
                if failure is None:
                    key = (name, observation.label)
                    self._passed[key] = self._passed.get(key, 0) + 1
                else:
                    self._failed.append(self._finding(session, name, failure, exchange, observation.label))

    def _finding(self, session: Session, name: str, failure: BaseException, exchange: Exchange, label: str) -> Finding:
        return Finding(
            target=self.target.name,
            check=getattr(failure, "check", name),
            operation=label,
            title=getattr(failure, "title", type(failure).__name__),
            message=session.redactor.text(getattr(failure, "message", str(failure))),
            requests=(request_view(session.redactor, exchange),),
            status=exchange.status,
            response=session.redactor.text(exchange.content.decode("utf-8", "replace")[:500]),
            seed=self.seed,
            stage=self.stage,
            code=getattr(failure, "code", ""),
        )

    def drain(self) -> Iterator[Outcome]:
        with self._lock:
            passed, failed = self._passed, self._failed
            self._passed, self._failed = {}, []
        for finding in failed:
            yield Outcome(self.target.name, finding.check, finding.operation, "failed", 0, finding)
        for (check, operation), count in passed.items():
            yield Outcome(self.target.name, check, operation, "passed", count)


def failure_finding(session: Session, failure: BaseException, *, check: str, stage: str, seed: int) -> Finding:
    steps = getattr(failure, "steps", ()) or ()
    exchanges = [step for step in steps if isinstance(step, Exchange)]
    last = exchanges[-1] if exchanges else None
    return Finding(
        target=session.target.name,
        check=getattr(failure, "check", check) or check,
        operation=getattr(failure, "operation", None) or (f"{last.method} {last.path}" if last else check),
        title=getattr(failure, "title", type(failure).__name__),
        message=session.redactor.text(getattr(failure, "message", str(failure))),
        requests=tuple(request_view(session.redactor, step) for step in exchanges[-6:]),
        status=last.status if last else None,
        response=session.redactor.text(last.content.decode("utf-8", "replace")[:500]) if last else "",
        seed=seed,
        stage=stage,
        code=getattr(failure, "code", ""),
    )


def _prepare(session: Session) -> Iterator[Event]:
    """Create a few resources of our own, so generated PUT/DELETE cases have safe ids to touch."""
    options = session.options
    if options.read_only or options.allow_destructive:
        return
    try:
        session.profile.prepare_resources(ScenarioContext(session, "prepare"))
    except ConformanceFailure as failure:
        yield Note(
            session.target.name,
            f"could not create the run's own resources ({failure.message}); operations that need them are skipped",
            "warning",
        )


def _deviations(session: Session) -> Iterator[Event]:
    for item in session.deviations.drain():
        times = f" ({item.count} times)" if item.count > 1 else ""
        where = f"{item.operation}: " if item.operation else ""
        yield Note(session.target.name, f"{item.check}: {where}{item.message}{times}", "deviation")


def _scenarios(session: Session, checker: ResponseChecker, seed: int) -> Iterator[Event]:
    name = session.target.name
    for item in SCENARIOS[session.api]:
        reason = session.policy.missing(item.needs, item.writes)
        if reason:
            yield Outcome(name, item.name, "scenario", "skipped", note=reason)
            continue
        checker.stage = f"scenario {item.name}"
        try:
            item.func(ScenarioContext(session, item.name))
        except ConformanceFailure as failure:
            yield from checker.drain()
            finding = failure_finding(session, failure, check=item.name, stage=checker.stage, seed=seed)
            yield Outcome(name, finding.check, finding.operation, "failed", 0, finding)
            if finding.check != item.name:
                yield Outcome(name, item.name, "scenario", "failed", 0, None, note=f"see {finding.check}")
            continue
        except ScenarioSkipped as skipped:
            yield from checker.drain()
            yield Outcome(name, item.name, "scenario", "skipped", note=session.redactor.text(str(skipped)))
            continue
        except (Unreachable, SafetyRefusal, RunAborted):
            raise
        except Exception as exc:  # a scenario that breaks is an error of the run, not a verdict on the server
            yield from checker.drain()
            yield Outcome(
                name, item.name, "scenario", "error", note=session.redactor.text(f"{type(exc).__name__}: {exc}")
            )
            continue
        yield from checker.drain()
        yield Outcome(name, item.name, "scenario", "passed", 1)


def _machines(session: Session, checker: ResponseChecker, seed: int, deadline: float | None) -> Iterator[Event]:
    name = session.target.name
    options = session.options
    rounds = 0
    while True:
        for spec in session.profile.machines:
            reason = session.policy.missing(spec.needs, spec.writes)
            if reason:
                if rounds == 0:
                    yield Outcome(name, spec.name, "state machine", "skipped", note=reason)
                continue
            checker.stage = f"state machine {spec.name}"
            yield StageStarted(name, checker.stage)
            started = time.monotonic()
            result = run_machine(
                spec,
                session,
                seed=seed + rounds,
                max_examples=max(2, options.max_examples // 2),
                max_steps=options.max_steps,
            )
            yield from checker.drain()
            yield StageFinished(name, checker.stage, time.monotonic() - started)
            if isinstance(result, ConformanceFailure):
                finding = failure_finding(session, result, check=spec.name, stage=checker.stage, seed=seed + rounds)
                yield Outcome(name, finding.check, finding.operation, "failed", 0, finding)
            elif isinstance(result, Unreachable):
                raise result
            elif result is not None:
                yield Outcome(
                    name, spec.name, "state machine", "error", note=session.redactor.text(describe_error(result))
                )
            elif rounds == 0:
                yield Outcome(name, spec.name, "state machine", "passed", 1)
        rounds += 1
        if deadline is None or time.monotonic() >= deadline:
            return


def _execute(target: Target, options: Options, *, mode: str) -> Iterator[Event]:
    started = time.monotonic()
    # A fuzz run without --seed draws one (and reports it, so a finding can be replayed).
    seed = options.seed if options.seed is not None else random.getrandbits(31) if mode == "fuzz" else 0
    name = target.name
    yield RunStarted(name, target.api, target.base_url, seed, mode)
    checker = ResponseChecker(target, seed)
    yield StageStarted(name, "preflight")
    try:
        session = open_session(target, options, listener=checker)
    except (RunAborted, ContractError) as exc:
        yield RunFinished(name, time.monotonic() - started, error=str(exc))
        return
    except ConformanceFailure as failure:
        # A strict run's preflight that meets a difference from a mock choice: the run cannot start.
        yield RunFinished(name, time.monotonic() - started, error=str(failure.message))
        return
    checker.session = session
    yield StageFinished(name, "preflight", time.monotonic() - started)
    for note in session.notes:
        yield Note(name, note)
    error: str | None = None
    deadline = started + (options.max_time or 600) if mode == "fuzz" else None
    try:
        yield from _prepare(session)
        yield from checker.drain()
        if "scenarios" in options.stages:
            yield StageStarted(name, "scenarios")
            stage_start = time.monotonic()
            yield from _scenarios(session, checker, seed)
            yield StageFinished(name, "scenarios", time.monotonic() - stage_start)
        if "schemathesis" in options.stages:
            budget = None
            if deadline is not None:
                budget = max(1, int((deadline - time.monotonic()) * 0.6))
            yield from run_schemathesis(session, mode=mode, seed=seed, max_time=budget)
        if "machines" in options.stages:
            yield from _machines(session, checker, seed, deadline)
    except (Unreachable, GenericRunError, SafetyRefusal) as exc:
        error = session.redactor.text(str(exc))
    finally:
        try:
            notes = session.profile.cleanup(session.client, session.ledger)
        except Unreachable as exc:
            notes = [f"clean-up failed: {session.redactor.text(str(exc))}"]
        session.close()
    yield from checker.drain()
    yield from _deviations(session)
    for note in notes:
        yield Note(name, note, "warning")
    yield RunFinished(name, time.monotonic() - started, error=error, stats={"created": session.ledger.created_count()})
