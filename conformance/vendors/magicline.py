"""Magicline as the suite treats it: API keys with scopes, access mediums only on the test customer, changes only
to the run's own mediums, and the mediums state machine."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from ..checks import magicline as checks
from ..client import ApiClient
from ..ledger import Ledger
from ..policy import SafetyPolicy, SafetyRefusal, id_like
from ..profile import Identity, VendorProfile
from ..scenarios import ScenarioContext
from ..session import RunAborted, Session
from ..stateful import Machine, MachineSpec, spec
from ..target import Credentials

DISCOVERY_LIMIT = 5
CHANGING = ("updateAccessMediums", "deleteAccessMediums")


class MagiclineMediumsMachine(Machine):
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
            f"{self.base}/access-mediums", json_body={"type": kind, "value": checks.fresh_value()}
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
        value = checks.fresh_value()
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
            self.ctx.client.put(f"{self.base}/access-mediums/{ident}", json_body={"value": checks.fresh_value()}),
            404,
            why=f"changing deleted medium {ident}",
        )

    @rule()
    def read(self) -> None:
        self.compare()

    def compare(self) -> None:
        shown = checks.mediums(self.ctx, self.session.target.customer_id)
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


class MagiclineProfile(VendorProfile):
    api = "magicline"
    needed_credentials = ("api_key",)
    other_credentials = ("api_key",)
    granting_operations = {"addAccessMediums": "customer_id", "addAccessMedium": "customer_id"}
    destructive_operations = frozenset(CHANGING)
    own_things_need = "customer_id"
    # A value already used in the studio is refused with 400 (`reference: value`).
    domain_refusals = {"addAccessMediums": ["400"], "addAccessMedium": ["400"], "updateAccessMediums": ["400"]}
    # Under database load any operation may answer 503.
    documented_server_errors = {"*": ["503"]}
    ledger_kind = "medium"

    def authenticate(self, anonymous: ApiClient, credentials: Credentials) -> Identity:
        return Identity({"X-API-KEY": credentials.api_key or ""})

    def schemathesis_auth(self, identity: Identity) -> dict[str, Any]:
        return {"openapi": {"ApiKeyAuth": {"api_key": identity.headers["X-API-KEY"]}}}

    def discover(self, session: Session) -> None:
        listing = session.client.get(checks.CUSTOMERS, params={"sliceSize": 50})
        body = listing.json()
        if listing.status in (401, 403):
            raise RunAborted(f"the server refused {session.target.spell('api_key')} (HTTP {listing.status})")
        if listing.status != 200 or not isinstance(body, dict) or not isinstance(body.get("result"), list):
            raise RunAborted(
                f"the server does not look like the Magicline Open API: GET {checks.CUSTOMERS} answered HTTP "
                f"{listing.status} without a `result` list; check the base URL"
            )
        customers = [c.get("id") for c in body["result"] if isinstance(c, dict)]
        session.discovered["customers"] = [c for c in customers if isinstance(c, int)][:DISCOVERY_LIMIT]

    def check_setup(self, session: Session) -> None:
        target = session.target
        if target.customer_id is not None:
            exchange = session.client.get(f"{checks.CUSTOMERS}/{target.customer_id}")
            if exchange.status != 200:
                raise RunAborted(
                    f"{target.spell('customer_id')} {target.customer_id} is not a customer of this studio "
                    f"(reading it answered HTTP {exchange.status})"
                )
        if session.limited is not None:
            exchange = session.limited.get(checks.CUSTOMERS, params={"sliceSize": 50})
            if exchange.status == 401:
                raise RunAborted(f"the server refused {target.spell('limited_api_key')} (HTTP 401)")

    def make_safe(self, policy: SafetyPolicy, operation_id: str | None, path: dict[str, Any], body: Any) -> Any:
        if operation_id in self.granting_operations and id_like(path.get("customerId")):
            path["customerId"] = policy.target.customer_id
        if operation_id in CHANGING and not policy.options.allow_destructive:
            customer, medium = path.get("customerId"), path.get("accessMediumId")
            if (id_like(customer) or id_like(medium)) and not policy.ledger.owns("medium", medium, customer):
                owned = policy.next_owned("medium")
                if owned is None:
                    raise SafetyRefusal(f"{operation_id}: no access medium of this run to use")
                path["customerId"], path["accessMediumId"] = owned.parent, owned.ident
        return body

    def observe(
        self, ledger: Ledger, operation_id: str | None, path: dict[str, Any], request_body: Any, body: Any
    ) -> None:
        if operation_id in self.granting_operations and isinstance(body, dict) and "id" in body:
            ledger.add("medium", body["id"], parent=path.get("customerId"), body=body)
        elif operation_id == "deleteAccessMediums":
            ledger.mark_deleted("medium", path.get("accessMediumId"))

    def prepare_resources(self, ctx: ScenarioContext) -> None:
        if ctx.target.customer_id is not None:
            checks.add_medium(ctx)

    def cleanup(self, client: ApiClient, ledger: Ledger) -> list[str]:
        notes = []
        for item in ledger.items("medium", live=True):
            exchange = client.delete(f"{checks.CUSTOMERS}/{item.parent}/access-mediums/{item.ident}")
            if exchange.status in (200, 204, 404):
                ledger.mark_deleted("medium", item.ident)
            else:
                notes.append(
                    f"could not delete access medium {item.ident} of customer {item.parent} "
                    f"this run created (HTTP {exchange.status})"
                )
        return notes

    def keeps_failure(self, code: str, method: str) -> bool:
        # HEAD checks only the key and answers 200 whether or not the resource exists (documented), which a
        # generic check would count as reading a deleted resource (ST301).
        return not (code == "ST301" and method == "HEAD")

    def refused_fields(self, status: int, body: Any) -> set[str] | None:
        reference = body.get("reference") if isinstance(body, dict) else None
        if not isinstance(reference, str) or not reference:
            return None
        return {reference.split(".")[0].lower()}

    @property
    def machines(self) -> list[MachineSpec]:
        return [spec(MagiclineMediumsMachine, "magicline", "medium", ("customer_id",), writes=True)]


PROFILE = MagiclineProfile()
