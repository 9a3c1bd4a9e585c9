"""AIPIX VMS as the suite treats it: a login per tenant, Laravel's 422 naming fields, codes only on the test
intercom, bulk delete only of the run's own codes, and the codes state machine."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from ..checks import vms as checks
from ..client import ApiClient
from ..ledger import Ledger
from ..policy import SafetyPolicy, SafetyRefusal, id_like, shortest_expiry
from ..profile import Identity, VendorProfile
from ..scenarios import ScenarioContext
from ..session import RunAborted, Session
from ..stateful import Machine, MachineSpec, spec
from ..target import Credentials

LOGIN = "/api/v1/token"
#: what every VMS client sends besides its token (the device id is the run's own)
CLIENT_HEADERS = {"Accept": "application/json", "X-Client": "web"}

_TITLES = st.from_regex(r"[a-z][a-z0-9]{0,11}", fullmatch=True)


class VmsCodesMachine(Machine):
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
        self.expect(checks.delete_codes(self.ctx.client, ids), 204, why=f"deleting codes {ids}")
        for ident in ids:
            self.model.pop(ident)
            self.deleted.add(ident)

    @precondition(lambda self: bool(self.deleted))
    @rule(data=st.data())
    def delete_gone(self, data: st.DataObject) -> None:
        ident = data.draw(st.sampled_from(sorted(self.deleted, key=str)))
        exchange = checks.delete_codes(self.ctx.client, [ident])
        # A gone id is refused (the mock's choice) or skipped (a Laravel whereIn delete): either way nothing else
        # may change, which the next read judges.
        self.guard(lambda: checks.judge_foreign_delete(self.ctx, exchange, "deleting a deleted code again"))

    @rule()
    def read(self) -> None:
        self.compare(checks.list_all(self.ctx))

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
            self.guard(functools.partial(checks.compare_listed, self.ctx, created, listed, self.check))

    def teardown(self) -> None:
        try:
            if not self.box and self.model:
                self.compare(checks.list_all(self.ctx))
        finally:
            if self.model:
                checks.delete_codes(self.ctx.client, list(self.model))
                self.deleted.update(self.model)


class VmsProfile(VendorProfile):
    api = "vms"
    needed_credentials = ("login", "password")
    other_credentials = ("login", "password")
    login_operations = frozenset({"login"})
    door_operations = frozenset({"openDoor"})
    granting_operations = {"createCode": "intercom_id"}
    destructive_operations = frozenset({"deleteCodes"})
    own_things_need = "intercom_id"
    # A create refused for a domain rule (a past expiry, a busy keypad), a bulk delete of foreign ids, a door that
    # cannot be reached: Laravel's 422, which no schema can foresee.
    domain_refusals = {"createCode": ["422"], "deleteCodes": ["422"], "openDoor": ["422"]}
    gentle_operations = frozenset({"getWsUrl"})
    ledger_kind = "vms_code"

    def base_headers(self) -> dict[str, str]:
        import uuid

        return {**CLIENT_HEADERS, "X-UUID": f"conformance-{uuid.uuid4()}"}

    def authenticate(self, anonymous: ApiClient, credentials: Credentials) -> Identity:
        exchange = anonymous.post(LOGIN, json_body={"login": credentials.login, "password": credentials.password})
        body = exchange.json()
        if exchange.status == 200 and isinstance(body, dict) and isinstance(body.get("access_token"), str):
            token = body["access_token"].removeprefix("Bearer ").strip()
            given = body.get("user")
            user = given if isinstance(given, dict) else {}
            return Identity({"Authorization": f"Bearer {token}"}, user.get("id"), token)
        if exchange.status in (404, 405) or not isinstance(body, dict):
            raise RunAborted(
                f"the server does not look like the VMS API: POST {LOGIN} answered HTTP {exchange.status}"
                f"{'' if isinstance(body, dict) else ' without a JSON body'}; check the base URL (it ends before /api)"
            )
        raise RunAborted(f"VMS login as {credentials.login!r} failed (HTTP {exchange.status}); check the credentials")

    def discover(self, session: Session) -> None:
        listing = session.client.get(checks.LIST, params={"per_page": 1})
        if listing.status in (401, 403):
            raise RunAborted(f"the server refused the VMS token it issued (HTTP {listing.status})")
        if session.target.intercom_id is None:
            session.notes.append(
                f"VMS cannot list intercoms: without {session.target.spell('intercom_id')} the checks that create "
                "codes are skipped"
            )

    def check_setup(self, session: Session) -> None:
        """The test intercom must be the user's: the run's first code on it says so (or the run stops)."""
        target = session.target
        if target.intercom_id is None or session.options.read_only or session.options.allow_destructive:
            return
        exchange = session.client.post(
            f"/api/v1/intercom/{target.intercom_id}/codes",
            json_body={"title": "conformance fixture 0", "expired_at": session.policy.expiry_text()},
        )
        if exchange.status in (403, 404):
            raise RunAborted(
                f"{target.spell('intercom_id')} {target.intercom_id} is not one of this user's intercoms "
                f"(creating a code on it answered HTTP {exchange.status})"
            )

    def make_safe(self, policy: SafetyPolicy, operation_id: str | None, path: dict[str, Any], body: Any) -> Any:
        target, options = policy.target, policy.options
        if operation_id in ("createCode", "openDoor") and id_like(path.get("intercom")):
            path["intercom"] = target.intercom_id
        if operation_id == "createCode" and isinstance(body, dict):
            body = _clamp_expiry(policy, body)
        if operation_id == "deleteCodes" and not options.allow_destructive and isinstance(body, dict):
            body = _own_code_ids(policy, body)
        return body

    def observe(
        self, ledger: Ledger, operation_id: str | None, path: dict[str, Any], request_body: Any, body: Any
    ) -> None:
        if operation_id == "createCode" and isinstance(body, dict) and "id" in body:
            ledger.add("vms_code", body["id"], parent=path.get("intercom"), body=body)
        elif operation_id == "deleteCodes" and isinstance(request_body, dict):
            for ident in request_body.get("ids") or []:
                # a broken server may "delete" malformed ids; only real ids can name a code
                if isinstance(ident, int) and not isinstance(ident, bool):
                    ledger.mark_deleted("vms_code", ident)

    def prepare_resources(self, ctx: ScenarioContext) -> None:
        if ctx.target.intercom_id is not None:
            while len(ctx.session.ledger.items("vms_code", live=True)) < 2:
                checks.create_code(ctx, "conformance fixture")

    def cleanup(self, client: ApiClient, ledger: Ledger) -> list[str]:
        notes: list[str] = []
        live = [item.ident for item in ledger.items("vms_code", live=True)]
        for start in range(0, len(live), checks.VMS_BULK_LIMIT):
            chunk = live[start : start + checks.VMS_BULK_LIMIT]
            exchange = checks.delete_codes(client, chunk)
            if exchange.status == 204:
                for ident in chunk:
                    ledger.mark_deleted("vms_code", ident)
                continue
            # All or nothing: one id already gone refuses the lot, so fall back to one at a time.
            for ident in chunk:
                single = checks.delete_codes(client, [ident])
                if single.status in (204, 422):
                    ledger.mark_deleted("vms_code", ident)
                else:
                    notes.append(f"could not delete code {ident} this run created (HTTP {single.status})")
        return notes

    def refused_fields(self, status: int, body: Any) -> set[str] | None:
        errors = body.get("errors") if status == 422 and isinstance(body, dict) else None
        if not isinstance(errors, dict) or not errors:
            return None
        return {str(key).split(".")[0].lower() for key in errors}

    @property
    def machines(self) -> list[MachineSpec]:
        return [spec(VmsCodesMachine, "vms", "vms_code", ("intercom_id",), writes=True)]


def _clamp_expiry(policy: SafetyPolicy, body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("expired_at")
    if not isinstance(value, str):
        return body
    try:
        moment = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    except ValueError:
        return body
    earliest = shortest_expiry(policy.clock.now())
    # Past dates stay (the server refuses them, or makes a code that is already expired and gone after a day);
    # later ones are cut to the shortest allowed.
    if moment > earliest:
        body = {**body, "expired_at": earliest.strftime("%Y-%m-%d %H:%M")}
    return body


def _own_code_ids(policy: SafetyPolicy, body: dict[str, Any]) -> dict[str, Any]:
    ids = body.get("ids")
    if not isinstance(ids, list):
        return body
    replaced = []
    for value in ids:
        if id_like(value) and not policy.ledger.owns("vms_code", int(str(value).strip().lstrip("+"))):
            owned = policy.next_owned("vms_code")
            if owned is None:
                raise SafetyRefusal("deleteCodes: no code of this run to delete")
            value = owned.ident
        replaced.append(value)
    return {**body, "ids": replaced}


PROFILE = VmsProfile()
