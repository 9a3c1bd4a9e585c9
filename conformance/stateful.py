"""Rule-based state machines (Hypothesis) that keep a model of what the server should hold: the plumbing and the
runner; each vendor's machine lives with its profile (`conformance/vendors/`).

Each machine acts on the server through the run's client and compares every read with its model, so a server
that forgets, duplicates, resurrects or changes data fails with a typed failure naming the machine's check.
Only what this run created (or the disposable Seam code) is written to; the model ignores everything else, since a
real server may have other clients.

The server keeps its state between Hypothesis examples, so what must survive an example (ids already deleted)
lives in `shared`, and each example removes what it created in its teardown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test

from .failures import ConformanceFailure, StateMismatch, UnexpectedStatus
from .scenarios import ScenarioContext

if TYPE_CHECKING:
    from .client import Exchange
    from .session import Session

__all__ = ["Machine", "MachineSpec", "describe_error", "run_machine", "spec"]


class Machine(RuleBasedStateMachine):
    """Common plumbing: the bound session, the failure box and the shared memory across examples. A vendor's
    machine (in `conformance/vendors/`) subclasses it and names its `check`."""

    check = ""
    session: Session
    shared: dict[str, Any]
    box: list[BaseException]

    def __init__(self) -> None:
        super().__init__()
        self.ctx = ScenarioContext(self.session, self.check)

    def _keep(self, failure: ConformanceFailure) -> ConformanceFailure:
        if not self.box:
            self.box.append(failure)
        return failure

    def fail(self, message: str, exchange: Exchange | None = None) -> ConformanceFailure:
        return self._keep(self.ctx.fail(StateMismatch, message, exchange=exchange))

    def expect(self, exchange: Exchange, *statuses: int, why: str) -> Exchange:
        try:
            return self.ctx.expect(exchange, *statuses, why=why)
        except ConformanceFailure as failure:
            raise self._keep(failure) from None

    def guard(self, step: Callable[[], Any]) -> Any:
        """Run a step that may raise a check's failure, keeping the first one the machine found."""
        try:
            return step()
        except ConformanceFailure as failure:
            raise self._keep(failure) from None


# ---------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class MachineSpec:
    name: str
    api: str
    machine: type[Machine]
    needs: tuple[str, ...] = ()
    writes: bool = False
    doc: str = field(default="")
    #: the ledger kind whose deleted ids the machine must never see again
    kind: str = ""


def spec(machine: type[Machine], api: str, kind: str, needs: tuple[str, ...] = (), writes: bool = False) -> MachineSpec:
    """A machine's entry in its vendor profile."""
    return MachineSpec(machine.check, api, machine, needs, writes, (machine.__doc__ or "").strip(), kind)


def run_machine(
    spec: MachineSpec,
    session: Session,
    *,
    seed: int,
    max_examples: int,
    max_steps: int,
    on_example: Callable[[], None] | None = None,
) -> BaseException | None:
    """Run one machine; returns the failure it found (a ConformanceFailure), another exception when the run
    broke, or None when the server kept to the model."""
    box: list[BaseException] = []
    # What earlier stages deleted must stay deleted here too.
    shared = {"deleted": set(session.ledger.deleted(spec.kind))}
    bound = type(spec.machine.__name__, (spec.machine,), {"session": session, "shared": shared, "box": box})
    settings = hypothesis.settings(
        max_examples=max_examples,
        stateful_step_count=max_steps,
        deadline=None,
        database=None,
        derandomize=False,
        # No shrinking: each replay sends real requests, and a stateful server does not replay the same anyway.
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )
    test = hypothesis.seed(seed)(get_state_machine_test(bound, settings=settings))
    try:
        test()
    except KeyboardInterrupt:
        raise
    except ConformanceFailure as failure:
        return failure
    except BaseException as exc:  # Hypothesis wraps flaky replays; the first failure is what the server did
        if box:
            return box[0]
        if isinstance(exc, hypothesis.errors.FlakyFailure):
            inner = [e for e in exc.exceptions if isinstance(e, ConformanceFailure)]
            if inner:
                return inner[0]
        return exc
    return box[0] if box else None


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, UnexpectedStatus):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
