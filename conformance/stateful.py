"""Rule-based state machines (Hypothesis) that keep a model of what the server should hold.

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
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, initialize, precondition, rule

from .checks import magicline as magicline_checks
from .checks import seam as seam_checks
from .checks import vms as vms_checks
from .failures import ConformanceFailure, StateMismatch, UnexpectedStatus
from .scenarios import ScenarioContext, excerpt

if TYPE_CHECKING:
    from .client import Exchange
    from .session import Session

__all__ = ["MACHINES", "MachineSpec", "run_machine"]

_TITLES = st.from_regex(r"[a-z][a-z0-9]{0,11}", fullmatch=True)


class _Machine(RuleBasedStateMachine):
    """Common plumbing: the bound session, the failure box and the shared memory across examples."""

    check = ""
    session: Session
    shared: dict[str, Any]
    box: list[BaseException]

    def __init__(self) -> None:
        super().__init__()
        self.ctx = ScenarioContext(self.session, self.check)

    def fail(self, message: str, exchange: Exchange | None = None) -> ConformanceFailure:
        failure = self.ctx.fail(StateMismatch, message, exchange=exchange)
        if not self.box:
            self.box.append(failure)
        return failure

    def expect(self, exchange: Exchange, *statuses: int, why: str) -> Exchange:
        try:
            return self.ctx.expect(exchange, *statuses, why=why)
        except ConformanceFailure as failure:
            if not self.box:
                self.box.append(failure)
            raise


# ---------------------------------------------------------------------------------------------- VMS


class VmsCodesMachine(_Machine):
    """Creates and bulk-deletes codes on the test intercom; every listing must show exactly the live ones."""

    check = "vms_codes_state"

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[Any, dict[str, Any]] = {}
        self.deleted: set[Any] = self.shared.setdefault("deleted", set())

    @precondition(lambda self: len(self.model) < 6)
    @rule(title=_TITLES)
    def create(self, title: str) -> None:
        exchange = self.ctx.client.post(
            f"/api/v1/intercom/{self.session.target.intercom_id}/codes",
            json_body={"title": f"conformance {title}", "expired_at": self.session.policy.expiry_text()},
        )
        body = self.expect(exchange, 200, why="creating a code").json() or {}
        ident = body.get("id")
        if ident in self.model or ident in self.deleted:
            raise self.fail(f"a new code got the id {ident} of a code this run already had", exchange)
        self.model[ident] = body

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def delete_some(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.model, key=str)), min_size=1, max_size=3, unique=True))
        self.expect(vms_checks.delete_codes(self.ctx.client, ids), 204, why=f"deleting codes {ids}")
        for ident in ids:
            self.model.pop(ident)
            self.deleted.add(ident)

    @precondition(lambda self: bool(self.deleted))
    @rule(data=st.data())
    def delete_gone(self, data: st.DataObject) -> None:
        ident = data.draw(st.sampled_from(sorted(self.deleted, key=str)))
        self.expect(vms_checks.delete_codes(self.ctx.client, [ident]), 422, why=f"deleting code {ident} again")

    @rule()
    def read(self) -> None:
        self.compare(vms_checks.list_all(self.ctx))

    def compare(self, listed: list[dict[str, Any]]) -> None:
        counts: dict[Any, int] = {}
        for item in listed:
            counts[item.get("id")] = counts.get(item.get("id"), 0) + 1
        back = sorted((i for i in self.deleted if i in counts), key=str)
        if back:
            raise self.fail(f"deleted codes {back} are listed again (resurrected)")
        doubled = sorted((i for i, n in counts.items() if n > 1 and i in self.model), key=str)
        if doubled:
            raise self.fail(f"codes {doubled} are listed more than once")
        for created in self.model.values():
            try:
                vms_checks.compare_listed(self.ctx, created, listed, self.check)
            except ConformanceFailure as failure:
                if not self.box:
                    self.box.append(failure)
                raise

    def teardown(self) -> None:
        try:
            if not self.box and self.model:
                self.compare(vms_checks.list_all(self.ctx))
        finally:
            if self.model:
                vms_checks.delete_codes(self.ctx.client, list(self.model))
                self.deleted.update(self.model)


# ---------------------------------------------------------------------------------------------- Seam


class SeamCodesMachine(_Machine):
    """Lists and reads the owner's codes, deletes the disposable one (once); a deleted code must stay gone and a
    read must agree with the list."""

    check = "seam_codes_state"

    def __init__(self) -> None:
        super().__init__()
        self.intercoms: list[str] = []
        self.known: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = self.shared.setdefault("deleted", set())

    @initialize()
    def discover(self) -> None:
        self.intercoms = [str(i.get("intercom_id")) for i in seam_checks.intercoms_of(self.ctx)][:5]

    @precondition(lambda self: bool(self.intercoms))
    @rule(data=st.data())
    def list_codes(self, data: st.DataObject) -> None:
        intercom = data.draw(st.sampled_from(self.intercoms))
        listed = seam_checks.codes_of(self.ctx, intercom)
        ids = [str(item.get("access_code_id")) for item in listed]
        if len(ids) != len(set(ids)):
            raise self.fail(f"intercom {intercom} lists a code more than once: {ids}")
        back = sorted(set(ids) & self.deleted)
        if back:
            raise self.fail(f"deleted codes {back} are listed again (resurrected)")
        for item in listed:
            self.known[str(item.get("access_code_id"))] = item

    @precondition(lambda self: bool(self.known) or bool(self.deleted))
    @rule(data=st.data())
    def read_code(self, data: st.DataObject) -> None:
        ident = data.draw(st.sampled_from(sorted({*self.known, *self.deleted})))
        exchange = self.ctx.client.get(f"/access_codes/{ident}")
        if ident in self.deleted:
            if exchange.status == 200:
                raise self.fail(f"deleted code {ident} can be read again (resurrected)", exchange)
            self.expect(exchange, 404, why=f"reading deleted code {ident}")
            return
        if exchange.status == 200 and exchange.json() != self.known[ident]:
            raise self.fail(
                f"code {ident}: the list says {self.known[ident]}, a read says {excerpt(exchange)}", exchange
            )
        # A code the device dropped meanwhile (it expired) may be gone; anything else is an error.
        self.expect(exchange, 200, 404, why=f"reading code {ident}")

    @precondition(
        lambda self: self.session.target.disposable_code_id is not None and not self.session.options.read_only
    )
    @rule()
    def delete_disposable(self) -> None:
        ident = str(self.session.target.disposable_code_id)
        exchange = self.ctx.client.delete(f"/access_codes/{ident}")
        if ident in self.deleted:
            if exchange.status == 200:
                raise self.fail(f"code {ident} was deleted twice", exchange)
            self.expect(exchange, 404, why=f"deleting code {ident} again")
        else:
            self.expect(exchange, 200, why=f"deleting the disposable code {ident}")
            self.deleted.add(ident)
            self.known.pop(ident, None)


# ---------------------------------------------------------------------------------------------- Magicline


class MagiclineMediumsMachine(_Machine):
    """Adds, changes and deletes access mediums of the test customer; every read of the customer must show
    exactly the live ones with their current values."""

    check = "magicline_mediums_state"

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[Any, dict[str, Any]] = {}
        self.deleted: set[Any] = self.shared.setdefault("deleted", set())
        self.base = f"/v1/customers/{self.session.target.customer_id}"

    @precondition(lambda self: len(self.model) < 5)
    @rule(kind=st.sampled_from(["CARD_NUMBER", "PIN", "BARCODE", "WALLET_PASS"]))
    def add(self, kind: str) -> None:
        exchange = self.ctx.client.post(
            f"{self.base}/access-mediums", json_body={"type": kind, "value": magicline_checks.fresh_value()}
        )
        body = self.expect(exchange, 200, why="adding a medium").json() or {}
        ident = body.get("id")
        if ident in self.model or ident in self.deleted:
            raise self.fail(f"a new medium got the id {ident} of a medium this run already had", exchange)
        self.model[ident] = {"id": ident, "type": kind, "value": body.get("value")}

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def change(self, data: st.DataObject) -> None:
        ident = data.draw(st.sampled_from(sorted(self.model, key=str)))
        value = magicline_checks.fresh_value()
        self.expect(
            self.ctx.client.put(f"{self.base}/access-mediums/{ident}", json_body={"value": value}),
            200,
            why=f"changing medium {ident}",
        )
        self.model[ident]["value"] = value

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        ident = data.draw(st.sampled_from(sorted(self.model, key=str)))
        self.expect(self.ctx.client.delete(f"{self.base}/access-mediums/{ident}"), 200, why=f"deleting medium {ident}")
        self.model.pop(ident)
        self.deleted.add(ident)

    @precondition(lambda self: bool(self.deleted))
    @rule(data=st.data())
    def touch_deleted(self, data: st.DataObject) -> None:
        ident = data.draw(st.sampled_from(sorted(self.deleted, key=str)))
        self.expect(
            self.ctx.client.put(
                f"{self.base}/access-mediums/{ident}", json_body={"value": magicline_checks.fresh_value()}
            ),
            404,
            why=f"changing deleted medium {ident}",
        )

    @rule()
    def read(self) -> None:
        self.compare()

    def compare(self) -> None:
        shown = magicline_checks.mediums(self.ctx, self.session.target.customer_id)
        back = sorted((i for i in self.deleted if i in shown), key=str)
        if back:
            raise self.fail(f"deleted mediums {back} show on the customer again (resurrected)")
        for ident, wanted in self.model.items():
            found = shown.get(ident, [])
            if not found:
                raise self.fail(f"medium {ident} is missing from the customer (forgotten)")
            if len(found) > 1:
                raise self.fail(f"medium {ident} shows {len(found)} times")
            got = {key: found[0].get(key) for key in ("id", "type", "value")}
            if got != wanted:
                raise self.fail(f"medium {ident} shows as {got}, expected {wanted}")

    def teardown(self) -> None:
        try:
            if not self.box and self.model:
                self.compare()
        finally:
            for ident in list(self.model):
                self.ctx.client.delete(f"{self.base}/access-mediums/{ident}")
                self.deleted.add(ident)


# ---------------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class MachineSpec:
    name: str
    api: str
    machine: type[_Machine]
    needs: tuple[str, ...] = ()
    writes: bool = False
    doc: str = field(default="")
    #: the ledger kind whose deleted ids the machine must never see again
    kind: str = ""


def _spec(
    machine: type[_Machine], api: str, kind: str, needs: tuple[str, ...] = (), writes: bool = False
) -> MachineSpec:
    return MachineSpec(machine.check, api, machine, needs, writes, (machine.__doc__ or "").strip(), kind)


MACHINES: dict[str, list[MachineSpec]] = {
    "vms": [_spec(VmsCodesMachine, "vms", "vms_code", ("intercom_id",), writes=True)],
    "seam": [_spec(SeamCodesMachine, "seam", "seam_code")],
    "magicline": [_spec(MagiclineMediumsMachine, "magicline", "medium", ("customer_id",), writes=True)],
}


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
