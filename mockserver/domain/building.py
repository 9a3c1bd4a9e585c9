"""The simulated building: the one object the vendor adapters, the control API and the device talk to.

One `Building` holds intercom owners (VMS users who also connect to Seam), Magicline studios and their customers,
intercoms with their doors and keypads, access codes, credentials and a clock. The three vendor adapters are
views of it; they never touch the store themselves.

The rules live in modules that each own their record kinds (`credentials`, `devices`, `codes`, `customers`),
around one unit of work (`unit`: store, clock, random source, lock, events, settling). `Building` is a thin
facade: every public method is one operation of the unit (one store transaction, so a refused operation changes
nothing; its events published once it has committed). Time-driven changes (codes that pass `will_deleted_at`,
doors that relock) happen when state is next touched, never in a background task.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from ..store.base import Record, Store, View
from .clock import Clock
from .codes import Codes
from .credentials import Credentials
from .customers import Customers
from .devices import Devices
from .events import Event
from .kinds import K
from .model import AccessCode, AccessMedium, Customer, Decision, Intercom, Owner, Studio
from .unit import Rules, UnitOfWork

__all__ = ["Building", "Record", "Rules"]

T = TypeVar("T")


class Building:
    """The simulated building. See the module docstring."""

    def __init__(self, store: Store, clock: Clock, *, seed: int | None = None, rules: Rules | None = None) -> None:
        self._unit = unit = UnitOfWork(store, clock, seed=seed, rules=rules)
        self.store = store
        self.clock = clock
        self.rules = unit.rules
        self._credentials = Credentials(unit)
        self._customers = Customers(unit, self._credentials)
        self._devices = Devices(unit, self._credentials, self._customers.find_credential)
        self._codes = Codes(unit, self._credentials, self._devices)
        unit.settle = self._settle

    def _settle(self, now: float) -> None:
        self._codes.expire_due(now)
        self._devices.relock_due(now)

    # ------------------------------------------------------------------ events and time

    def subscribe(self, subscriber: Callable[[Event], None]) -> None:
        """Call ``subscriber`` with every event, after the operation that caused it has committed."""
        self._unit.subscribe(subscriber)

    def publish_pending(self) -> None:
        self._unit.publish_pending()

    def now(self) -> datetime:
        return self._unit.now()

    def tick(self) -> None:
        """Bring time-driven state up to the clock (called after the clock moves)."""
        self._unit.operation(lambda: None)

    def next_change(self) -> float:
        """The earliest simulated time (epoch seconds) from which settling could change the building, or
        infinity: until then only writes change it, so what was read from it stays true."""

        def earliest() -> float:
            found = math.inf
            for partition in ("all", "keypad"):
                due = self.store.lowest(K.CODES_BY_DEADLINE, partition)
                if due is not None:
                    found = min(found, due)
            until_ms = self.store.lowest(K.UNLOCKED_DOORS, "all")
            return found if until_ms is None else min(found, until_ms / 1000)

        return self._unit.lookup(earliest)

    # ------------------------------------------------------------------ loading

    def is_empty(self) -> bool:
        return self.store.is_empty()

    def load_fixtures(self, fixtures: dict[str, Any]) -> None:
        """Populate an empty building from fixture data (see `mockserver/fixtures/demo.yaml`), as one operation."""
        from .fixtures import apply_fixtures

        self._unit.operation(apply_fixtures, self, fixtures)

    def add_owner(self, *, id: int, login: str, password: str, name: str, uuid_: str | None = None) -> Owner:
        return self._unit.operation(
            self._credentials.add_owner, id=id, login=login, password=password, name=name, uuid_=uuid_
        )

    def add_studio(self, *, id: int, name: str) -> Studio:
        return self._unit.operation(self._credentials.add_studio, id=id, name=name)

    def add_api_key(self, *, key: str, studio_id: int, scopes: Iterable[str]) -> dict[str, Any]:
        return self._unit.operation(self._credentials.add_api_key, key=key, studio_id=studio_id, scopes=scopes)

    def add_token(self, *, api: str, user_id: int, token: str | None = None, pinned: bool = False) -> str:
        return self._unit.operation(self._credentials.add_token, api=api, user_id=user_id, token=token, pinned=pinned)

    def pin_token(self, api: str, user_id: int, token: str) -> None:
        self._unit.operation(self._credentials.pin_token, api, user_id, token)

    def add_intercom(self, **fields: Any) -> Intercom:
        return self._unit.operation(self._devices.add_intercom, **fields)

    def add_customer(self, customer: Customer) -> Customer:
        return self._unit.operation(self._customers.add, customer)

    # ------------------------------------------------------------------ credentials

    def vms_login(self, login: str, password: str, *, session_id: str | None = None) -> tuple[Owner, str, str]:
        """Log a VMS user in; answers the owner, a new bearer token and its session id."""
        return self._unit.operation(self._credentials.vms_login, login, password, session_id=session_id)

    def user_for_token(self, api: str, token: str) -> Owner | None:
        """The owner a VMS or Seam bearer token belongs to, or None."""
        return self._unit.lookup(self._credentials.user_for_token, api, token)

    def mint_token(self, api: str, user_id: int) -> str:
        return self._unit.operation(self._credentials.add_token, api=api, user_id=user_id)

    def revoke_token(self, api: str, token: str) -> None:
        self._unit.operation(self._credentials.revoke_token, api, token)

    def owner_by_credentials(self, login: str, password: str) -> Owner:
        return self._unit.operation(self._credentials.owner_by_credentials, login, password)

    def create_oauth_code(self, owner_id: int, redirect_uri: str) -> str:
        return self._unit.operation(self._credentials.create_oauth_code, owner_id, redirect_uri)

    def exchange_oauth_code(self, code: str) -> str:
        """Trade a one-time authorization code for a Seam bearer token."""
        return self._unit.operation(self._credentials.exchange_oauth_code, code)

    def api_key(self, key: str) -> dict[str, Any] | None:
        """The studio and scopes of a Magicline API key, or None."""
        return self._unit.lookup(self._credentials.api_key, key)

    def mint_api_key(self, studio_id: int, scopes: Iterable[str] | None = None) -> dict[str, Any]:
        return self._unit.operation(self._credentials.mint_api_key, studio_id, scopes)

    def credentials(self) -> dict[str, Any]:
        """Every credential an integrator needs: owners with passwords and a pinned token each, API keys."""

        def gather() -> dict[str, Any]:
            owners = [
                {
                    "owner": owner,
                    "tokens": self._credentials.pinned_tokens(owner.id),
                    "intercom_ids": [i.id for i in self._devices.owner_intercoms(owner.id)],
                }
                for owner in self._credentials.owners()
            ]
            keys = [{"api_key": r.key, **r.data} for r in self.store.scan(K.API_KEY)]
            return {"owners": owners, "api_keys": keys}

        return self._unit.operation(gather)

    # ------------------------------------------------------------------ owners, studios, intercoms

    def owners(self) -> list[Owner]:
        return self._unit.operation(self._credentials.owners)

    def studios(self) -> list[tuple[Studio, int]]:
        """Every studio with its number of customers."""
        return self._unit.operation(self._credentials.studios)

    def intercoms(self) -> list[Intercom]:
        return self._unit.operation(self._devices.intercoms)

    def owner_intercoms(self, user_id: int) -> list[Intercom]:
        return self._unit.operation(self._devices.owner_intercoms, user_id)

    def owner_intercom(
        self, user_id: int, *, intercom_id: int | None = None, intercom_uuid: str | None = None
    ) -> Intercom:
        """One of the owner's intercoms; another owner's intercom is as unknown as a missing one."""
        return self._unit.operation(
            self._devices.owner_intercom, user_id, intercom_id=intercom_id, intercom_uuid=intercom_uuid
        )

    def intercom(self, ref: str | int) -> Intercom:
        """An intercom by its VMS id or its Seam UUID (for the control API and the device)."""
        return self._unit.operation(self._devices.intercom_ref, ref)

    # ------------------------------------------------------------------ access codes

    def create_code(
        self,
        *,
        intercom: Intercom,
        title: str,
        expired_at: datetime,
        created_by: int | None,
        owner_uuid: str | None = None,
        digits: str | None = None,
        origin: str | None = None,
        allow_past: bool = False,
        code_id: int | None = None,
        code_uuid: str | None = None,
    ) -> AccessCode:
        """Create a code on an intercom (see `Codes.create`)."""
        return self._unit.operation(
            self._codes.create,
            intercom=intercom,
            title=title,
            expired_at=expired_at,
            created_by=created_by,
            owner_uuid=owner_uuid,
            digits=digits,
            origin=origin,
            allow_past=allow_past,
            code_id=code_id,
            code_uuid=code_uuid,
        )

    def user_codes(
        self, user_id: int, *, page: int, per_page: int, newest_first: bool = True
    ) -> tuple[list[tuple[AccessCode, Intercom]], int]:
        """One page of the codes a VMS user created (newest or oldest first), with their intercoms; and the total."""
        return self._unit.operation(
            self._codes.user_codes, user_id, page=page, per_page=per_page, newest_first=newest_first
        )

    def create_user_code(
        self,
        user_id: int,
        intercom_id: int,
        *,
        title: str,
        expired_at: datetime,
        origin: str | None = None,
        allow_past: bool = False,
    ) -> tuple[AccessCode, Intercom]:
        """A VMS user's new code on one of their intercoms, with the intercom (which a new code leaves as it was)."""
        return self._unit.operation(
            self._codes.create_user_code,
            user_id,
            intercom_id,
            title=title,
            expired_at=expired_at,
            origin=origin,
            allow_past=allow_past,
        )

    def code_with_intercom(self, code_id: int) -> tuple[AccessCode, Intercom]:
        return self._unit.operation(self._codes.code_with_intercom, code_id)

    def created_code(self, code_id: int) -> tuple[AccessCode, Intercom]:
        """A code the operation that raised `CodeCreated` created, with its intercom, read for its subscribers as
        that operation left them: a read, not an operation of its own (nothing is settled first; on replicas, a
        whole transaction per pushed code was a tenth of a replica's time taking VMS creates)."""
        return self._unit.lookup(self._codes.code_with_intercom, code_id)

    def delete_user_codes(
        self, user_id: int, ids: list[int], *, origin: str | None = None, ignore_foreign: bool = False
    ) -> list[int]:
        """Delete codes a VMS user created; answers the ids deleted (see `Codes.delete_user_codes`)."""
        return self._unit.operation(
            self._codes.delete_user_codes, user_id, ids, origin=origin, ignore_foreign=ignore_foreign
        )

    def intercom_codes(self, intercom: Intercom) -> list[AccessCode]:
        return self._unit.operation(self._codes.intercom_codes, intercom)

    def newest_codes(self, intercom_id: int, limit: int) -> tuple[list[AccessCode], int]:
        """The intercom's ``limit`` newest codes, newest first, and how many it has in all (for the panel)."""
        return self._unit.operation(self._codes.newest_codes, intercom_id, limit)

    def owner_intercom_codes(self, user_id: int, intercom_uuid: str) -> tuple[Intercom, list[AccessCode]]:
        """One of the owner's intercoms and its codes, read at one moment."""

        def read() -> tuple[Intercom, list[AccessCode]]:
            intercom = self._devices.owner_intercom(user_id, intercom_uuid=intercom_uuid)
            return intercom, self._codes.intercom_codes(intercom)

        return self._unit.operation(read)

    def owner_code(self, user_id: int, code_uuid: str) -> AccessCode:
        """A code on one of the owner's intercoms (whoever created it)."""
        return self._unit.operation(self._codes.owner_code, user_id, code_uuid)

    def remove_owner_code(self, user_id: int, code_uuid: str, *, via: str = "seam") -> AccessCode:
        """Remove a code from the owner's intercom; the device must be reachable."""
        return self._unit.operation(self._codes.remove_owner_code, user_id, code_uuid, via=via)

    # ------------------------------------------------------------------ the device

    def set_online(self, ref: str | int, online: bool) -> Intercom:
        """Take a device offline or bring it back; coming back applies the changes queued for it."""
        return self._unit.operation(self._devices.set_online, ref, online)

    def pending_sync(self, intercom_id: int) -> int:
        return self._unit.operation(self._devices.pending_sync, intercom_id)

    def unlock(
        self, intercom: Intercom, unlock_ms: int | None = None, *, by: str, detail: dict[str, Any] | None = None
    ) -> datetime:
        """Unlock the door for a while; answers when it relocks. An offline device cannot be reached."""
        return self._unit.operation(self._devices.unlock, intercom, unlock_ms, by, detail or {})

    def present(self, ref: str | int, kind: str, value: str) -> Decision:
        """A credential presented at a device (see `Devices.present`)."""
        return self._unit.operation(self._devices.present, ref, kind, value)

    def device_log(self, ref: str | int, limit: int = 100) -> list[dict[str, Any]]:
        return self._unit.operation(self._devices.device_log, ref, limit)

    def keypad_size(self, intercom_id: int) -> int:
        """How many working codes the device's keypad holds."""
        return self._unit.operation(self._devices.keypad_size, intercom_id)

    # ------------------------------------------------------------------ customers (Magicline)

    def customers(
        self, studio_id: int, *, after: int | None, limit: int, status: str | None = None
    ) -> tuple[list[Customer], bool]:
        """A slice of a studio's customers ordered by id, after a cursor; and whether more follow."""
        return self._unit.operation(self._customers.slice, studio_id, after=after, limit=limit, status=status)

    def customer(self, studio_id: int, customer_id: int) -> Customer:
        return self._unit.operation(self._customers.studio_customer, studio_id, customer_id)[0]

    def customer_access_code(self, studio_id: int, customer_id: int) -> Customer:
        """The customer with a current QR access code; an expired one is replaced by a fresh one."""
        return self._unit.operation(self._customers.access_code, studio_id, customer_id)

    def add_medium(self, studio_id: int, customer_id: int, medium_type: str, value: str) -> AccessMedium:
        return self._unit.operation(self._customers.add_medium, studio_id, customer_id, medium_type, value)

    def update_medium(self, studio_id: int, customer_id: int, medium_id: int, value: str) -> AccessMedium:
        return self._unit.operation(self._customers.update_medium, studio_id, customer_id, medium_id, value)

    def delete_medium(self, studio_id: int, customer_id: int, medium_id: int) -> AccessMedium:
        return self._unit.operation(self._customers.delete_medium, studio_id, customer_id, medium_id)

    # ------------------------------------------------------------------ parts, for the fixtures' batch load

    @property
    def parts(self) -> tuple[Credentials, Devices, Codes, Customers]:
        """The rule modules, for code that runs inside one of the building's operations (`load_fixtures`)."""
        return self._credentials, self._devices, self._codes, self._customers

    # ------------------------------------------------------------------ whole state

    def snapshot_records(self) -> dict[str, Any]:
        return self._unit.lookup(self.store.dump)

    def restore_records(self, state: dict[str, Any]) -> None:
        self._unit.lookup(self.store.load, state)
        self._unit.discard_events()

    def clear(self) -> None:
        self._unit.lookup(self.store.clear)
        self._unit.discard_events()

    def save_meta(self, name: str, data: dict[str, Any]) -> int:
        """Keep a small named document with the state (the clock, for instance); answer its new version."""
        return self._unit.write(self.store.put, K.META, name, data)

    def atomically(self, function: Callable[[], T]) -> T:
        """Run ``function``, which calls this building, as one operation: all of it is kept or none, run again
        when another replica committed first (starting replicas fill an empty shared building once)."""
        return self._unit.write(function)

    def view(self) -> View:
        """A block (one request) that reads the shared state as of its first read: other replicas' commits
        are caught up with once in it, not before every read (see `Store.view`; ``with`` or ``async with``)."""
        return self.store.view()

    def meta_changes(self, names: list[str], seen: Mapping[str, int]) -> list[tuple[str, int, dict[str, Any]]]:
        """The named documents that exist with another version than ``seen`` gives, with their version and data:
        cheap to poll for another replica's change (where the backend tells versions apart without decoding, only
        a changed document is read)."""

        def read() -> list[tuple[str, int, dict[str, Any]]]:
            versions_of = getattr(self.store, "versions", None)
            if versions_of is not None:
                versions = versions_of(K.META, names)
            else:
                versions = [record.version if (record := self.store.get(K.META, name)) else 0 for name in names]
            changed = []
            for name, version in zip(names, versions, strict=True):
                if version and version != seen.get(name):
                    record = self.store.get(K.META, name)
                    if record is not None:
                        changed.append((name, record.version, record.data))
            return changed

        return self._unit.lookup(read)

    def meta(self, name: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            record = self.store.get(K.META, name)
            return record.data if record else None

        return self._unit.lookup(read)
