"""A Seam-compatible intercom cloud as the suite treats it: bearer tokens given by the user, codes read on the
owner's intercoms, the one disposable code the only thing a run may delete, and the codes state machine."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from ..checks import seam as checks
from ..client import ApiClient
from ..ledger import Ledger
from ..policy import SafetyPolicy, uuid_like
from ..profile import Identity, VendorProfile
from ..scenarios import excerpt
from ..session import RunAborted, Session
from ..stateful import Machine, MachineSpec, spec
from ..target import Credentials, Target

DISCOVERY_LIMIT = 5


class SeamCodesMachine(Machine):
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
        self.intercoms = [str(i.get("intercom_id")) for i in checks.intercoms_of(self.ctx)][:5]

    @precondition(lambda self: bool(self.intercoms))
    @rule(data=st.data())
    def list_codes(self, data: st.DataObject) -> None:
        intercom = data.draw(st.sampled_from(self.intercoms))
        listed = checks.codes_of(self.ctx, intercom)
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


class SeamProfile(VendorProfile):
    api = "seam"
    needed_credentials = ("token",)
    other_credentials = ("token",)
    login_operations = frozenset({"exchangeToken", "authorizeLogin"})
    door_operations = frozenset({"unlockIntercom"})
    destructive_operations = frozenset({"deleteAccessCode"})
    # The door cannot be reached: documented 500s with their error ids.
    documented_server_errors = {"unlockIntercom": ["500"], "deleteAccessCode": ["500"]}
    ledger_kind = "seam_code"

    def authenticate(self, anonymous: ApiClient, credentials: Credentials) -> Identity:
        return Identity({"Authorization": f"Bearer {credentials.token}"})

    def discover(self, session: Session) -> None:
        listing = session.client.get("/door_locks")
        body = listing.json()
        if listing.status in (401, 403):
            raise RunAborted(f"the server refused {session.target.spell('token')} (HTTP {listing.status})")
        if listing.status != 200 or not isinstance(body, dict) or not isinstance(body.get("intercoms"), list):
            raise RunAborted(
                f"the server does not look like a Seam-compatible intercom cloud: GET /door_locks answered HTTP "
                f"{listing.status} without an `intercoms` list; check the base URL"
            )
        intercoms = [item.get("intercom_id") for item in body["intercoms"] if isinstance(item, dict)]
        session.discovered["intercoms"] = [i for i in intercoms if isinstance(i, str)][:DISCOVERY_LIMIT]
        codes: list[Any] = []
        for intercom in session.discovered["intercoms"]:
            answer = session.client.get("/access_codes", params={"intercom_id": intercom}).json()
            if isinstance(answer, dict):
                codes += [c.get("access_code_id") for c in answer.get("access_codes", []) if isinstance(c, dict)]
        session.discovered["codes"] = [c for c in codes if isinstance(c, str)][:DISCOVERY_LIMIT]

    def check_setup(self, session: Session) -> None:
        target = session.target
        if target.disposable_code_id is None:
            return
        exchange = session.client.get(f"/access_codes/{target.disposable_code_id}")
        if exchange.status != 200:
            raise RunAborted(
                f"{target.spell('disposable_code_id')} {target.disposable_code_id} is not a code on this owner's "
                f"intercoms (reading it answered HTTP {exchange.status})"
            )

    def destructive_reason(self, target: Target) -> str | None:
        if target.disposable_code_id is None:
            return f"deletes a real code; needs {target.spell('disposable_code_id')} (or --allow-destructive)"
        return None

    def make_safe(self, policy: SafetyPolicy, operation_id: str | None, path: dict[str, Any], body: Any) -> Any:
        target = policy.target
        if operation_id == "deleteAccessCode" and not policy.options.allow_destructive:
            value = path.get("access_code_id")
            if uuid_like(value) and str(value).strip().lower() != str(target.disposable_code_id).lower():
                path["access_code_id"] = target.disposable_code_id
        return body

    def observe(
        self, ledger: Ledger, operation_id: str | None, path: dict[str, Any], request_body: Any, body: Any
    ) -> None:
        if operation_id == "deleteAccessCode":
            ledger.mark_deleted("seam_code", path.get("access_code_id"))

    @property
    def machines(self) -> list[MachineSpec]:
        return [spec(SeamCodesMachine, "seam", "seam_code")]


PROFILE = SeamProfile()
