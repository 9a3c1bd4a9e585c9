"""Domain checks that need several calls: each is a `Scenario` registered for one API, run in order with a
`ScenarioContext` that raises typed failures naming the check.

A scenario states what it needs (another tenant, a test id, a door) and whether it writes; the safety policy skips
it with a note when a need is missing or the run is read-only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .failures import ConformanceFailure, UnexpectedStatus

if TYPE_CHECKING:
    from .client import ApiClient, Exchange
    from .session import Session

__all__ = ["SCENARIOS", "Scenario", "ScenarioContext", "ScenarioSkipped", "scenario"]


class ScenarioSkipped(Exception):
    """The scenario cannot be done against this server (say, its socket cannot be reached); the message says why."""


@dataclass(frozen=True)
class Scenario:
    name: str
    api: str
    func: Callable[[ScenarioContext], None]
    needs: tuple[str, ...] = ()
    writes: bool = False
    doc: str = ""


SCENARIOS: dict[str, list[Scenario]] = {"vms": [], "seam": [], "magicline": []}


def scenario(
    api: str, *, needs: tuple[str, ...] = (), writes: bool = False
) -> Callable[[Callable[[ScenarioContext], None]], Callable[[ScenarioContext], None]]:
    """Register a scenario; the function's name is the name of the check it verifies."""

    def decorate(func: Callable[[ScenarioContext], None]) -> Callable[[ScenarioContext], None]:
        if all(item.name != func.__name__ for item in SCENARIOS[api]):
            SCENARIOS[api].append(Scenario(func.__name__, api, func, needs, writes, (func.__doc__ or "").strip()))
        return func

    return decorate


def excerpt(exchange: Exchange, limit: int = 300) -> str:
    text = exchange.content.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "…"


class ScenarioContext:
    """What a scenario works with, and how it fails."""

    def __init__(self, session: Session, check: str) -> None:
        self.session = session
        self.check = check
        history = session.client.history
        # Only this scenario's own requests reproduce its failures.
        self.first_seq = (history[-1].seq + 1) if history else 0

    @property
    def client(self) -> ApiClient:
        return self.session.client

    @property
    def anonymous(self) -> ApiClient:
        return self.session.anonymous

    @property
    def other(self) -> ApiClient:
        assert self.session.other is not None
        return self.session.other

    @property
    def limited(self) -> ApiClient:
        assert self.session.limited is not None
        return self.session.limited

    @property
    def target(self) -> Any:
        return self.session.target

    def steps(self, limit: int = 6) -> tuple[Exchange, ...]:
        mine = [item for item in self.session.client.history if item.seq >= self.first_seq]
        return tuple(mine[-limit:])

    def fail(
        self,
        kind: type[ConformanceFailure],
        message: str,
        *,
        check: str | None = None,
        exchange: Exchange | None = None,
        chain: bool = False,
    ) -> ConformanceFailure:
        """A failure to raise: `raise ctx.fail(StateMismatch, "...")`. With `exchange` (and not `chain`) that one
        request reproduces it; otherwise the scenario's latest requests do."""
        operation = None
        if exchange is not None:
            found = self.session.contract.find(exchange.method, exchange.path)
            operation = found.label if found else f"{exchange.method} {exchange.path}"
        steps = (exchange,) if exchange is not None and not chain else self.steps()
        return kind(check=check or self.check, message=message, operation=operation, steps=steps)

    def expect(
        self,
        exchange: Exchange,
        *statuses: int,
        why: str,
        check: str | None = None,
        kind: type[ConformanceFailure] = UnexpectedStatus,
    ) -> Exchange:
        """Require one of `statuses` (or, for a status the contract marks the mock's choice, its class: then the
        difference is a note)."""
        operation = self.session.contract.operations.get(exchange.operation_id or "")
        accepted = operation.accepts(exchange.status, statuses) if operation else exchange.status in statuses
        if accepted and exchange.status not in statuses and operation is not None:
            wanted = " or ".join(str(s) for s in statuses)
            self.deviate(f"{why}: answered {exchange.status} where the mock chose {wanted}", exchange, check=check)
        if not accepted:
            wanted = " or ".join(str(s) for s in statuses)
            # A plain status error reproduces with its one request; a state or tenant failure needs the story.
            raise self.fail(
                kind,
                f"{why}: expected {wanted}, got {exchange.status}: {excerpt(exchange)}",
                check=check,
                exchange=exchange,
                chain=kind is not UnexpectedStatus,
            )
        return exchange

    def deviate(self, message: str, exchange: Exchange | None = None, *, check: str | None = None) -> None:
        """The server differs from a mock choice: a note, or under --strict a failure (raised)."""
        operation = ""
        if exchange is not None:
            found = self.session.contract.find(exchange.method, exchange.path)
            operation = found.label if found else f"{exchange.method} {exchange.path}"
        self.session.deviate(check or self.check, operation, message)

    @property
    def strict(self) -> bool:
        return self.session.strict

    def judge(
        self, in_view: bool, kind: type[ConformanceFailure], message: str, *, exchange: Exchange | None = None
    ) -> None:
        """A difference from what the contract as written says: a failure when the run's view holds that rule
        (it is documented, or the run is strict), else a note (the rule is one of the mock's choices)."""
        if in_view:
            raise self.fail(kind, message, exchange=exchange)
        self.deviate(message, exchange)

    def body(self, exchange: Exchange, *, check: str | None = None) -> Any:
        """The JSON body of a successful answer (an object), or a failure."""
        body = exchange.json()
        if not isinstance(body, dict):
            raise self.fail(
                UnexpectedStatus, f"expected a JSON object, got: {excerpt(exchange)}", check=check, exchange=exchange
            )
        return body
