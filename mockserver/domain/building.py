"""The simulated building and every rule about it.

One `Building` holds intercom owners (VMS users who also connect to Seam), Magicline studios and their customers,
intercoms with their doors and keypads, access codes, credentials and a clock. The three vendor adapters are
views of it; they never touch the store themselves.

State lives in a `Store` as plain records (see `_Kinds`); every public method is one store transaction, so a
refused operation changes nothing. Time-driven changes (codes that pass `will_deleted_at`, doors that relock)
happen when state is next touched (`tick`), never in a background task.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..store.base import Record, Store, VersionConflict
from .clock import Clock
from .errors import (
    Conflict,
    DeviceOffline,
    Invalid,
    NotAllowed,
    NotFound,
    TooManySessions,
    Unauthenticated,
)
from .events import (
    AccessDecided,
    CodeCreated,
    CodesDeleted,
    ConnectivityChanged,
    DoorLocked,
    DoorUnlocked,
    Event,
    MediumChanged,
)
from .model import (
    GRACE_SECONDS,
    MAGICLINE_SCOPES,
    MEDIUM_TYPES,
    AccessCode,
    AccessMedium,
    Customer,
    Decision,
    Intercom,
    Owner,
    Studio,
)

T = TypeVar("T")


class _Kinds:
    """Record kinds and index names, in one place so the layout of the state can be read at a glance."""

    OWNER = "owner"  # key: user id
    OWNER_BY_LOGIN = "owner_login"  # key: login -> {id}
    OWNER_BY_UUID = "owner_uuid"  # key: uuid -> {id}
    STUDIO = "studio"  # key: studio id
    API_KEY = "api_key"  # key: the key -> {studio_id, scopes}
    TOKEN = "token"  # key: bearer token -> {api, user_id, session_id, pinned}
    SESSION = "session"  # key: session id -> {token}
    OAUTH_CODE = "oauth_code"  # key: code -> {user_id, redirect_uri, expires_at}
    INTERCOM = "intercom"  # key: intercom id
    INTERCOM_BY_UUID = "intercom_uuid"  # key: uuid -> {id}
    CODE = "code"  # key: code id
    CODE_BY_UUID = "code_uuid"  # key: uuid -> {id}
    CODE_BY_DIGITS = "code_digits"  # key: "<intercom>:<digits>" -> {id}; digits are unique per intercom
    KEYPAD = "keypad"  # key: "<intercom>:<digits>" -> what the device itself holds
    SYNC = "sync"  # key: sequence -> a change queued for an offline device
    DEVICE_LOG = "device_log"  # key: sequence -> one device event
    CUSTOMER = "customer"  # key: customer id
    MEDIUM_VALUE = "medium_value"  # key: "<studio>:<type>:<value>" -> {customer_id, medium_id}
    QR = "qr"  # key: QR content -> {customer_id, studio_id}
    META = "meta"  # key: name -> anything the building keeps about itself

    # indexes
    INTERCOMS_BY_OWNER = "intercoms_by_owner"
    CODES_BY_USER = "codes_by_user"
    CODES_BY_INTERCOM = "codes_by_intercom"
    CODES_BY_DEADLINE = "codes_by_deadline"
    SESSIONS_BY_USER = "sessions_by_user"
    SYNC_BY_INTERCOM = "sync_by_intercom"
    LOG_BY_INTERCOM = "log_by_intercom"
    KEYPAD_BY_INTERCOM = "keypad_by_intercom"
    UNLOCKED_DOORS = "unlocked_doors"  # intercoms whose door stands open, by when it relocks
    CUSTOMERS_BY_STUDIO = "customers_by_studio"


K = _Kinds


@dataclass
class Rules:
    """The building's adjustable rules (not persisted: they come from configuration)."""

    #: digits in a generated keypad code (VMS generates five)
    code_length: int = 5
    #: shortest and longest codes a keypad accepts
    keypad_min_digits: int = 4
    keypad_max_digits: int = 12
    #: how long a Magicline QR access code is valid
    qr_validity_seconds: int = 300
    #: VMS sessions a user may hold before login answers 419
    vms_max_sessions: int = 50
    oauth_code_ttl_seconds: int = 600
    #: device events kept per intercom
    device_log_limit: int = 1000


def _synchronized(method: Callable[..., T]) -> Callable[..., T]:
    """Run a public method under the building's lock and inside one store transaction; once the outermost
    such call has committed, hand its events to the subscribers."""

    @functools.wraps(method)
    def wrapper(self: Building, *args: Any, **kwargs: Any) -> T:
        with self._lock:
            self._depth += 1
            try:
                with self.store.transaction():
                    if self._depth == 1:  # a nested call belongs to an operation that has settled already
                        self._settle()
                    result = method(self, *args, **kwargs)
            except BaseException:
                if self._depth == 1:
                    self._events.clear()
                raise
            finally:
                self._depth -= 1
            if self._depth == 0:
                self.publish_pending()
            return result

    return wrapper


def _reading(method: Callable[..., T]) -> Callable[..., T]:
    """Run a lookup that no time-driven change can affect (credentials) under the lock only: no transaction, no
    settling, so authenticating a request stays cheap."""

    @functools.wraps(method)
    def wrapper(self: Building, *args: Any, **kwargs: Any) -> T:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


class Building:
    """The simulated building. See the module docstring."""

    def __init__(self, store: Store, clock: Clock, *, seed: int | None = None, rules: Rules | None = None) -> None:
        self.store = store
        self.clock = clock
        self.rules = rules or Rules()
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._events: list[Event] = []
        self._depth = 0
        self._subscribers: list[Callable[[Event], None]] = []

    # ------------------------------------------------------------------ events

    def subscribe(self, subscriber: Callable[[Event], None]) -> None:
        """Call ``subscriber`` with every event, after the operation that caused it has committed."""
        self._subscribers.append(subscriber)

    def publish_pending(self) -> None:
        """Hand the events collected so far to the subscribers (adapters call this after each operation)."""
        with self._lock:
            events, self._events = self._events, []
        for event in events:
            for subscriber in self._subscribers:
                subscriber(event)

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    # ------------------------------------------------------------------ time

    def now(self) -> datetime:
        return self.clock.now()

    def _now_s(self) -> float:
        return self.clock.timestamp()

    def _now_ms(self) -> int:
        return int(self._now_s() * 1000)

    @_synchronized
    def tick(self) -> None:
        """Bring time-driven state up to the clock (called after the clock moves)."""

    def _settle(self) -> None:
        """Remove codes past their `will_deleted_at` and relock doors whose unlock time is over."""
        now = self._now_s()
        for partition, remove in (("all", self._expire_code), ("keypad", self._forget_keypad_entry)):
            # Only the earliest deadline is looked at first: on most calls nothing is due and no record is read.
            while (due := self.store.lowest(K.CODES_BY_DEADLINE, partition)) is not None and due < now:
                for record in self.store.page(K.CODES_BY_DEADLINE, partition, limit=100).records:
                    if record.index[K.CODES_BY_DEADLINE][1] < now:
                        remove(record)
        self._relock_doors(now)

    @_reading
    def next_change(self) -> float:
        """The earliest simulated time (epoch seconds) from which settling could change the building, or
        infinity: until then only writes change it, so what was read from it stays true."""
        earliest = math.inf
        for partition in ("all", "keypad"):
            due = self.store.lowest(K.CODES_BY_DEADLINE, partition)
            if due is not None:
                earliest = min(earliest, due)
        until_ms = self.store.lowest(K.UNLOCKED_DOORS, "all")
        if until_ms is not None:
            earliest = min(earliest, until_ms / 1000)
        return earliest

    def _expire_code(self, record: Record) -> None:
        self._remove_code(AccessCode.from_data(record.data), revoked=False)

    def _forget_keypad_entry(self, record: Record) -> None:
        self.store.delete(K.KEYPAD, record.key)

    def _relock_doors(self, now: float) -> None:
        now_ms = now * 1000
        while (until := self.store.lowest(K.UNLOCKED_DOORS, "all")) is not None and until <= now_ms:
            for record in self.store.page(K.UNLOCKED_DOORS, "all", limit=100).records:
                intercom = Intercom.from_data(record.data)
                if intercom.unlocked_until_ms is not None and intercom.unlocked_until_ms <= now_ms:
                    at = intercom.unlocked_until_ms / 1000
                    intercom.unlocked_until_ms = None
                    self._save_intercom(intercom)
                    self._log(intercom.id, "door.locked", {}, at=at)
                    self._emit(DoorLocked(at=datetime.fromtimestamp(at, UTC), intercom_id=intercom.id))

    # ------------------------------------------------------------------ ids and secrets

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _secret(self, nbytes: int = 20) -> str:
        return self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    # ------------------------------------------------------------------ loading

    def is_empty(self) -> bool:
        return self.store.is_empty()

    @_synchronized
    def load_fixtures(self, fixtures: dict[str, Any]) -> None:
        """Populate an empty building from fixture data (see `mockserver/fixtures/demo.yaml`)."""
        from .fixtures import apply_fixtures

        apply_fixtures(self, fixtures)

    # --- creation primitives used by fixtures and the control API

    def add_owner(self, *, id: int, login: str, password: str, name: str, uuid_: str | None = None) -> Owner:
        now = int(self._now_s())
        owner = Owner(
            id=id,
            uuid=uuid_ or self._uuid(),
            login=login,
            password=password,
            name=name,
            created_at=now,
            updated_at=now,
        )
        self.store.put(K.OWNER, str(id), owner.to_data(), expected_version=0)
        self.store.put(K.OWNER_BY_LOGIN, login.lower(), {"id": id}, expected_version=0)
        self.store.put(K.OWNER_BY_UUID, owner.uuid, {"id": id}, expected_version=0)
        return owner

    def add_studio(self, *, id: int, name: str) -> Studio:
        studio = Studio(id=id, name=name)
        self.store.put(K.STUDIO, str(id), studio.to_data(), expected_version=0)
        return studio

    def add_intercom(self, **fields: Any) -> Intercom:
        fields.setdefault("uuid", self._uuid())
        fields.setdefault("updated_at", int(self._now_s() * 1_000_000))
        intercom = Intercom(**fields)
        self._owner(intercom.owner_id)
        for studio_id in intercom.admits_studios:
            self._studio(studio_id)
        self.store.put(
            K.INTERCOM,
            str(intercom.id),
            intercom.to_data(),
            expected_version=0,
            index={K.INTERCOMS_BY_OWNER: (str(intercom.owner_id), intercom.id)},
        )
        self.store.put(K.INTERCOM_BY_UUID, intercom.uuid, {"id": intercom.id}, expected_version=0)
        return intercom

    def add_customer(self, customer: Customer) -> Customer:
        self._studio(customer.studio_id)
        customer.uuid = customer.uuid or self._uuid()
        for medium in customer.mediums:
            self._check_medium_value_free(customer.studio_id, medium.value)
            self._file_medium(customer.studio_id, customer.id, medium)
        self._save_customer(customer, expected_version=0)
        return customer

    def add_api_key(self, *, key: str, studio_id: int, scopes: Iterable[str]) -> dict[str, Any]:
        self._studio(studio_id)
        scopes = sorted(set(scopes))
        unknown = set(scopes) - set(MAGICLINE_SCOPES)
        if unknown:
            raise Invalid(f"unknown scopes {sorted(unknown)}", field="scopes")
        data = {"studio_id": studio_id, "scopes": scopes}
        self.store.put(K.API_KEY, key, data, expected_version=0)
        return {"api_key": key, **data}

    def add_token(self, *, api: str, user_id: int, token: str | None = None, pinned: bool = False) -> str:
        """A bearer token for a VMS user or a Seam owner. Pinned tokens (the demo's) never count as sessions."""
        self._owner(user_id)
        token = token or self._secret()
        session_id = hashlib.sha256(token.encode()).hexdigest() + self._secret(8)
        seq = self.store.next_id("session")
        index = {} if pinned else {K.SESSIONS_BY_USER: (f"{api}:{user_id}", seq)}
        self.store.put(
            K.TOKEN,
            token,
            {"api": api, "user_id": user_id, "session_id": session_id, "pinned": pinned, "seq": seq},
            expected_version=0,
            index=index,
        )
        self.store.put(K.SESSION, session_id, {"token": token})
        return token

    # ------------------------------------------------------------------ credentials

    @_synchronized
    def vms_login(self, login: str, password: str, *, session_id: str | None = None) -> tuple[Owner, str, str]:
        """Log a VMS user in; answers the owner, a new bearer token and its session id."""
        owner = self._owner_by_login(login)
        if owner is None or owner.password != password:
            raise Invalid("These credentials do not match our records.", field="login")
        if session_id:
            ended = self.store.get(K.SESSION, session_id)
            if ended is not None:
                token = self.store.get(K.TOKEN, ended.data["token"])
                if token and token.data["user_id"] == owner.id and not token.data["pinned"]:
                    self.store.delete(K.TOKEN, ended.data["token"])
                    self.store.delete(K.SESSION, session_id)
        sessions = self.store.page(K.SESSIONS_BY_USER, f"vms:{owner.id}", limit=1)
        if sessions.total >= self.rules.vms_max_sessions:
            raise TooManySessions("Too many sessions.", session_id=sessions.records[0].data["session_id"])
        token = self.add_token(api="vms", user_id=owner.id)
        return owner, token, self.store.get(K.TOKEN, token).data["session_id"]

    @_reading
    def user_for_token(self, api: str, token: str) -> Owner | None:
        """The owner a VMS or Seam bearer token belongs to, or None."""
        record = self.store.get(K.TOKEN, token)
        if record is None or record.data["api"] != api:
            return None
        return self._owner(record.data["user_id"])

    @_reading
    def session_of(self, token: str) -> str | None:
        record = self.store.get(K.TOKEN, token)
        return record.data["session_id"] if record else None

    @_synchronized
    def mint_token(self, api: str, user_id: int) -> str:
        return self.add_token(api=api, user_id=user_id)

    @_synchronized
    def owner_by_credentials(self, login: str, password: str) -> Owner:
        owner = self._owner_by_login(login)
        if owner is None or owner.password != password:
            raise Unauthenticated("Wrong login or password")
        return owner

    @_synchronized
    def create_oauth_code(self, owner_id: int, redirect_uri: str) -> str:
        code = self._secret(16)
        expires_at = self._now_s() + self.rules.oauth_code_ttl_seconds
        self.store.put(
            K.OAUTH_CODE, code, {"user_id": owner_id, "redirect_uri": redirect_uri, "expires_at": expires_at}
        )
        return code

    @_synchronized
    def exchange_oauth_code(self, code: str) -> str:
        """Trade a one-time authorization code for a Seam bearer token."""
        record = self.store.get(K.OAUTH_CODE, code)
        if record is None:
            raise Invalid("The authorization code is invalid or was already used", field="code")
        self.store.delete(K.OAUTH_CODE, code)
        if record.data["expires_at"] < self._now_s():
            raise Invalid("The authorization code has expired", field="code")
        return self.add_token(api="seam", user_id=record.data["user_id"])

    @_reading
    def api_key(self, key: str) -> dict[str, Any] | None:
        """The studio and scopes of a Magicline API key, or None."""
        record = self.store.get(K.API_KEY, key)
        return record.data if record else None

    @_synchronized
    def mint_api_key(self, studio_id: int, scopes: Iterable[str] | None = None) -> dict[str, Any]:
        return self.add_api_key(
            key="ml_" + self._secret(16),
            studio_id=studio_id,
            scopes=MAGICLINE_SCOPES if scopes is None else scopes,
        )

    @_synchronized
    def credentials(self) -> dict[str, Any]:
        """Every credential an integrator needs: owners with passwords and a pinned token each, API keys."""
        owners = []
        for record in self.store.scan(K.OWNER):
            owner = Owner.from_data(record.data)
            owners.append(
                {
                    "owner": owner,
                    "tokens": self._pinned_tokens(owner.id),
                    "intercom_ids": [i.id for i in self._owner_intercoms(owner.id)],
                }
            )
        keys = [{"api_key": r.key, **r.data} for r in self.store.scan(K.API_KEY)]
        return {"owners": owners, "api_keys": keys}

    def _pinned_tokens(self, user_id: int) -> dict[str, str]:
        tokens = self.store.get(K.META, f"pinned_tokens:{user_id}")
        return dict(tokens.data) if tokens else {}

    def pin_token(self, api: str, user_id: int, token: str) -> None:
        record = self.store.get(K.META, f"pinned_tokens:{user_id}")
        data = dict(record.data) if record else {}
        data[api] = token
        self.store.put(K.META, f"pinned_tokens:{user_id}", data)

    # ------------------------------------------------------------------ owners, studios, intercoms

    def _owner(self, user_id: int) -> Owner:
        record = self.store.get(K.OWNER, str(user_id))
        if record is None:
            raise NotFound("User", user_id)
        return Owner.from_data(record.data)

    def _owner_by_login(self, login: str) -> Owner | None:
        alias = self.store.get(K.OWNER_BY_LOGIN, login.lower())
        return self._owner(alias.data["id"]) if alias else None

    def _studio(self, studio_id: int) -> Studio:
        record = self.store.get(K.STUDIO, str(studio_id))
        if record is None:
            raise NotFound("Studio", studio_id, field="studio_id")
        return Studio.from_data(record.data)

    def _intercom(self, intercom_id: int) -> Intercom:
        record = self.store.get(K.INTERCOM, str(intercom_id))
        if record is None:
            raise NotFound("Intercom", intercom_id, field="intercom")
        return Intercom.from_data(record.data)

    def _intercom_by_uuid(self, intercom_uuid: str) -> Intercom | None:
        alias = self.store.get(K.INTERCOM_BY_UUID, intercom_uuid)
        return self._intercom(alias.data["id"]) if alias else None

    def _owner_intercoms(self, user_id: int) -> list[Intercom]:
        page = self.store.page(K.INTERCOMS_BY_OWNER, str(user_id), limit=10_000)
        return [Intercom.from_data(r.data) for r in page.records]

    def _save_intercom(self, intercom: Intercom) -> None:
        index = {K.INTERCOMS_BY_OWNER: (str(intercom.owner_id), intercom.id)}
        if intercom.unlocked_until_ms is not None:
            index[K.UNLOCKED_DOORS] = ("all", intercom.unlocked_until_ms)
        self.store.put(K.INTERCOM, str(intercom.id), intercom.to_data(), index=index)

    @_synchronized
    def owners(self) -> list[Owner]:
        return [Owner.from_data(r.data) for r in self.store.scan(K.OWNER)]

    @_synchronized
    def studios(self) -> list[tuple[Studio, int]]:
        """Every studio with its number of customers."""
        return [
            (Studio.from_data(r.data), self.store.count(K.CUSTOMERS_BY_STUDIO, r.key))
            for r in self.store.scan(K.STUDIO)
        ]

    @_synchronized
    def intercoms(self) -> list[Intercom]:
        return sorted((Intercom.from_data(r.data) for r in self.store.scan(K.INTERCOM)), key=lambda i: i.id)

    @_synchronized
    def owner_intercoms(self, user_id: int) -> list[Intercom]:
        return self._owner_intercoms(user_id)

    def _owner_intercom(
        self, user_id: int, *, intercom_id: int | None = None, intercom_uuid: str | None = None
    ) -> Intercom:
        """One of the owner's intercoms; another owner's intercom is as unknown as a missing one."""
        intercom: Intercom | None
        if intercom_uuid is not None:
            intercom = self._intercom_by_uuid(intercom_uuid)
            ident: object = intercom_uuid
        else:
            record = self.store.get(K.INTERCOM, str(intercom_id))
            intercom = Intercom.from_data(record.data) if record else None
            ident = intercom_id
        if intercom is None or intercom.owner_id != user_id:
            raise NotFound("Intercom", ident, field="intercom")
        return intercom

    #: the same, as one operation of its own (`create_user_code` calls the body inside its own)
    owner_intercom = _synchronized(_owner_intercom)

    @_synchronized
    def intercom(self, ref: str | int) -> Intercom:
        """An intercom by its VMS id or its Seam UUID (for the control API and the device)."""
        return self._intercom_ref(ref)

    def _intercom_ref(self, ref: str | int) -> Intercom:
        text = str(ref)
        if text.isdigit():
            return self._intercom(int(text))
        intercom = self._intercom_by_uuid(text)
        if intercom is None:
            raise NotFound("Intercom", ref, field="intercom")
        return intercom

    @_synchronized
    def door_locked(self, intercom_id: int) -> bool:
        intercom = self._intercom(intercom_id)
        return intercom.unlocked_until_ms is None

    # ------------------------------------------------------------------ access codes

    def _digits_taken(self, intercom_id: int, digits: str) -> bool:
        return self.store.exists(K.CODE_BY_DIGITS, f"{intercom_id}:{digits}")

    def _generate_digits(self, intercom_id: int) -> str:
        # As VMS does: random digits of the configured length; a crowded keypad gets longer codes.
        for length in range(self.rules.code_length, self.rules.keypad_max_digits + 1):
            for _ in range(20):
                digits = str(self._rng.randint(10 ** (length - 1), 10**length - 1))
                if not self._digits_taken(intercom_id, digits):
                    return digits
        raise Invalid("No free code is left on this intercom", field="code")

    def _check_digits(self, digits: str) -> None:
        low, high = self.rules.keypad_min_digits, self.rules.keypad_max_digits
        if not (digits.isascii() and digits.isdigit()) or not low <= len(digits) <= high:
            raise Invalid(f"A code has {low} to {high} digits", field="code")

    def _create_code(
        self,
        *,
        intercom: Intercom,
        title: str,
        expired_at: datetime,
        created_by: int | None,
        owner_uuid: str | None = None,
        digits: str | None = None,
        origin: str | None = None,
    ) -> AccessCode:
        """Create a code on an intercom. It works on the keypad until `expired_at` and is gone 24 h later."""
        now = self._now_s()
        expires = int(_epoch(expired_at))
        if expires <= now:
            raise Invalid("The expired at must be a date after now.", field="expired_at")
        if digits is None:
            digits = self._generate_digits(intercom.id)
        else:
            self._check_digits(digits)
            if self._digits_taken(intercom.id, digits):
                raise Invalid("This code is already programmed on the intercom", field="code")
        if owner_uuid is None:
            owner_uuid = self._owner(created_by if created_by is not None else intercom.owner_id).uuid
        code = AccessCode(
            id=self.store.next_id("code", start=1000),
            uuid=self._uuid(),
            intercom_id=intercom.id,
            created_by=created_by,
            owner_uuid=owner_uuid,
            title=title,
            digits=digits,
            expired_at=expires,
            created_at=int(now),
        )
        index = {
            K.CODES_BY_INTERCOM: (str(intercom.id), code.id),
            K.CODES_BY_DEADLINE: ("all", code.will_deleted_at),
        }
        if created_by is not None:
            index[K.CODES_BY_USER] = (str(created_by), code.id)
        data = code.to_data()
        self.store.put(K.CODE, str(code.id), data, index=index, expected_version=0)
        self.store.put(K.CODE_BY_UUID, code.uuid, {"id": code.id}, expected_version=0)
        self.store.put(K.CODE_BY_DIGITS, f"{intercom.id}:{digits}", {"id": code.id}, expected_version=0)
        self._device_change(intercom, "add", code, data)
        self._emit(
            CodeCreated(at=self.now(), code_id=code.id, intercom_id=intercom.id, user_id=created_by, origin=origin)
        )
        return code

    #: the same, as one operation of its own (`create_user_code` calls the body inside its own)
    create_code = _synchronized(_create_code)

    def _code(self, code_id: int) -> AccessCode | None:
        record = self.store.get(K.CODE, str(code_id))
        return AccessCode.from_data(record.data) if record else None

    def _remove_code(self, code: AccessCode, *, revoked: bool) -> None:
        self.store.delete(K.CODE, str(code.id))
        self.store.delete(K.CODE_BY_UUID, code.uuid)
        self.store.delete(K.CODE_BY_DIGITS, f"{code.intercom_id}:{code.digits}")
        if revoked:
            self._device_change(self._intercom(code.intercom_id), "remove", code)
        else:
            # The device drops expired codes itself, online or not.
            self.store.delete(K.KEYPAD, f"{code.intercom_id}:{code.digits}")

    @_synchronized
    def user_codes(self, user_id: int, *, page: int, per_page: int) -> tuple[list[tuple[AccessCode, Intercom]], int]:
        """One page of the codes a VMS user created, newest first, with their intercoms; and the total."""
        result = self.store.page(
            K.CODES_BY_USER, str(user_id), limit=per_page, offset=(page - 1) * per_page, reverse=True
        )
        intercoms: dict[int, Intercom] = {}
        items = []
        for record in result.records:
            code = AccessCode.from_data(record.data)
            if code.intercom_id not in intercoms:
                intercoms[code.intercom_id] = self._intercom(code.intercom_id)
            items.append((code, intercoms[code.intercom_id]))
        return items, result.total

    @_synchronized
    def create_user_code(
        self, user_id: int, intercom_id: int, *, title: str, expired_at: datetime, origin: str | None = None
    ) -> tuple[AccessCode, Intercom]:
        """A VMS user's new code on one of their intercoms, with the intercom (which a new code leaves as it was)."""
        intercom = self._owner_intercom(user_id, intercom_id=intercom_id)
        code = self._create_code(
            intercom=intercom, title=title, expired_at=expired_at, created_by=user_id, origin=origin
        )
        return code, intercom

    @_synchronized
    def code_with_intercom(self, code_id: int) -> tuple[AccessCode, Intercom]:
        code = self._code(code_id)
        if code is None:
            raise NotFound("Code", code_id)
        return code, self._intercom(code.intercom_id)

    @_synchronized
    def delete_user_codes(self, user_id: int, ids: list[int], *, origin: str | None = None) -> list[int]:
        """Delete codes a VMS user created. Any id that is not one of them refuses the whole request."""
        unique = list(dict.fromkeys(ids))
        codes = []
        for position, code_id in enumerate(ids):
            code = self._code(code_id)
            if code is None or code.created_by != user_id:
                raise Invalid(f"The selected ids.{position} is invalid.", field=f"ids.{position}")
        for code_id in unique:
            code = self._code(code_id)
            assert code is not None
            codes.append(code)
            self._remove_code(code, revoked=True)
        self._emit(CodesDeleted(at=self.now(), by_user={user_id: unique}, via="vms", origin=origin))
        return unique

    @_synchronized
    def intercom_codes(self, intercom: Intercom) -> list[AccessCode]:
        page = self.store.page(K.CODES_BY_INTERCOM, str(intercom.id), limit=1_000_000)
        return [AccessCode.from_data(r.data) for r in page.records]

    @_synchronized
    def owner_intercom_codes(self, user_id: int, intercom_uuid: str) -> tuple[Intercom, list[AccessCode]]:
        """One of the owner's intercoms and its codes, read at one moment."""
        intercom = self.owner_intercom(user_id, intercom_uuid=intercom_uuid)
        return intercom, self.intercom_codes(intercom)

    @_synchronized
    def owner_code(self, user_id: int, code_uuid: str) -> AccessCode:
        """A code on one of the owner's intercoms (whoever created it)."""
        alias = self.store.get(K.CODE_BY_UUID, code_uuid)
        code = self._code(alias.data["id"]) if alias else None
        if code is None or self._intercom(code.intercom_id).owner_id != user_id:
            raise NotFound("Access code", code_uuid, field="access_code_id")
        return code

    @_synchronized
    def remove_owner_code(self, user_id: int, code_uuid: str, *, via: str = "seam") -> AccessCode:
        """Remove a code from the owner's intercom; the device must be reachable."""
        code = self.owner_code(user_id, code_uuid)
        intercom = self._intercom(code.intercom_id)
        if not intercom.online:
            raise DeviceOffline("The intercom is offline; the code could not be removed")
        self._remove_code(code, revoked=True)
        self._emit(CodesDeleted(at=self.now(), by_user={code.created_by: [code.id]}, via=via))
        return code

    # ------------------------------------------------------------------ the device

    def _device_change(self, intercom: Intercom, op: str, code: AccessCode, data: dict[str, Any] | None = None) -> None:
        """Program a change on the device now, or queue it until the device is back online (``data``: the code's,
        when the caller has it already)."""
        data = code.to_data() if data is None else data
        if intercom.online:
            self._apply_device_change(intercom.id, op, data)
        else:
            seq = self.store.next_id("sync")
            self.store.put(
                K.SYNC,
                str(seq),
                {"op": op, "code": data},
                index={K.SYNC_BY_INTERCOM: (str(intercom.id), seq)},
            )

    def _apply_device_change(self, intercom_id: int, op: str, code: dict[str, Any]) -> None:
        key = f"{intercom_id}:{code['digits']}"
        deadline = code["expired_at"] + GRACE_SECONDS
        if op == "add":
            if deadline < self._now_s():
                return  # came back online after the code was gone anyway
            self.store.put(
                K.KEYPAD,
                key,
                {"code_id": code["id"], "expired_at": code["expired_at"], "revoked": False},
                index={K.KEYPAD_BY_INTERCOM: (str(intercom_id), code["id"])},
            )
        else:
            # Remembered as revoked until it would have gone anyway, so the device can say why it refuses.
            self.store.put(
                K.KEYPAD,
                key,
                {"code_id": code["id"], "expired_at": code["expired_at"], "revoked": True},
                index={K.CODES_BY_DEADLINE: ("keypad", deadline)},
            )

    @_synchronized
    def set_online(self, ref: str | int, online: bool) -> Intercom:
        """Take a device offline or bring it back; coming back applies the changes queued for it."""
        intercom = self._intercom_ref(ref)
        if intercom.online == online:
            return intercom
        intercom.online = online
        intercom.updated_at = int(self._now_s() * 1_000_000)
        self._save_intercom(intercom)
        synced = 0
        if online:
            while True:
                page = self.store.page(K.SYNC_BY_INTERCOM, str(intercom.id), limit=100)
                for record in page.records:
                    self._apply_device_change(intercom.id, record.data["op"], record.data["code"])
                    self.store.delete(K.SYNC, record.key)
                    synced += 1
                if len(page.records) < 100:
                    break
        self._log(intercom.id, "device.online" if online else "device.offline", {"synced": synced})
        self._emit(ConnectivityChanged(at=self.now(), intercom_id=intercom.id, online=online, synced=synced))
        return intercom

    @_synchronized
    def pending_sync(self, intercom_id: int) -> int:
        return self.store.count(K.SYNC_BY_INTERCOM, str(intercom_id))

    @_synchronized
    def unlock(
        self,
        intercom: Intercom,
        unlock_ms: int | None = None,
        *,
        by: str,
        detail: dict[str, Any] | None = None,
    ) -> datetime:
        """Unlock the door for a while; answers when it relocks. An offline device cannot be reached."""
        intercom = self._intercom(intercom.id)
        if not intercom.online:
            raise DeviceOffline("Intercom is disconnected")
        return self._unlock(intercom, intercom.unlock_ms if unlock_ms is None else unlock_ms, by, detail or {})

    def _unlock(self, intercom: Intercom, unlock_ms: int, by: str, detail: dict[str, Any]) -> datetime:
        now_ms = self._now_ms()
        until = max(now_ms + unlock_ms, intercom.unlocked_until_ms or 0)
        intercom.unlocked_until_ms = until
        self._save_intercom(intercom)
        until_dt = datetime.fromtimestamp(until / 1000, UTC)
        self._log(intercom.id, "door.unlocked", {"by": by, "until": until_dt.isoformat(), **detail})
        self._emit(DoorUnlocked(at=self.now(), intercom_id=intercom.id, until=until_dt, by=by, detail=detail))
        return until_dt

    @_synchronized
    def present(self, ref: str | int, kind: str, value: str) -> Decision:
        """A credential presented at a device: keypad digits, a scanned QR or barcode, a card, PIN or wallet
        pass. Keypad codes are checked by the device itself (they work offline); everything else needs the
        cloud."""
        intercom = self._intercom_ref(ref)
        if kind == "keypad":
            decision = self._decide_keypad(intercom, value)
        elif not intercom.online:
            decision = Decision(False, "device_offline", "The device cannot reach the cloud to check this")
        else:
            decision = self._decide_customer(intercom, kind, value)
        self._log(
            intercom.id,
            "access.granted" if decision.granted else "access.denied",
            {"kind": kind, "reason": decision.reason, "detail": decision.detail},
        )
        self._emit(
            AccessDecided(
                at=self.now(),
                intercom_id=intercom.id,
                kind=kind,
                granted=decision.granted,
                reason=decision.reason,
            )
        )
        if decision.granted:
            until = self._unlock(intercom, intercom.unlock_ms, "credential", {"kind": kind})
            decision.unlocked_until_ms = int(until.timestamp() * 1000)
        return decision

    def _decide_keypad(self, intercom: Intercom, digits: str) -> Decision:
        low, high = self.rules.keypad_min_digits, self.rules.keypad_max_digits
        if not (digits.isascii() and digits.isdigit()) or not low <= len(digits) <= high:
            return Decision(False, "invalid_format", f"A code has {low} to {high} digits")
        entry = self.store.get(K.KEYPAD, f"{intercom.id}:{digits}")
        if entry is None:
            for other in self._owner_intercoms(intercom.owner_id):
                if other.id != intercom.id and self.store.get(K.KEYPAD, f"{other.id}:{digits}"):
                    return Decision(False, "wrong_intercom", f"The code belongs to intercom {other.id}")
            return Decision(False, "unknown", "No such code on this keypad")
        if entry.data["revoked"]:
            return Decision(False, "revoked", "The code was deleted")
        if self._now_s() > entry.data["expired_at"]:
            return Decision(False, "expired", "The code has expired")
        return Decision(True, "granted", f"code {entry.data['code_id']}")

    def _decide_customer(self, intercom: Intercom, kind: str, value: str) -> Decision:
        found = self._find_customer_credential(kind, value)
        if found is None:
            return Decision(False, "unknown", "No customer has this credential")
        customer, what, expired = found
        if customer.studio_id not in intercom.admits_studios:
            return Decision(False, "studio_not_admitted", f"Studio {customer.studio_id} is not admitted here")
        if customer.status == "FORMER_MEMBER" or customer.access_refusal:
            return Decision(False, "revoked", f"Customer {customer.id} may not enter")
        if expired:
            return Decision(False, "expired", "The access code has expired")
        return Decision(True, "granted", f"customer {customer.id} ({what})")

    def _find_customer_credential(self, kind: str, value: str) -> tuple[Customer, str, bool] | None:
        if kind in ("qr", "barcode"):
            alias = self.store.get(K.QR, value)
            if alias is not None:
                customer = self._customer_record(alias.data["customer_id"])
                if customer is not None and customer.qr_content == value:
                    expired = customer.qr_expires_at is None or self._now_s() >= customer.qr_expires_at
                    return customer, "access code", expired
        types = {
            "qr": ("BARCODE", "WALLET_PASS"),
            "barcode": ("BARCODE",),
            "card": ("CARD_NUMBER",),
            "pin": ("PIN",),
            "wallet_pass": ("WALLET_PASS",),
        }[kind]
        for studio in self.store.scan(K.STUDIO):
            for medium_type in types:
                alias = self.store.get(K.MEDIUM_VALUE, self._medium_key(int(studio.key), medium_type, value))
                if alias is not None:
                    customer = self._customer_record(alias.data["customer_id"])
                    if customer is not None:
                        return customer, medium_type, False
        return None

    def _log(self, intercom_id: int, kind: str, detail: dict[str, Any], *, at: float | None = None) -> None:
        seq = self.store.next_id("device_log")
        moment = datetime.fromtimestamp(self._now_s() if at is None else at, UTC)
        self.store.put(
            K.DEVICE_LOG,
            str(seq),
            {"at": moment.isoformat(), "type": kind, "detail": detail},
            index={K.LOG_BY_INTERCOM: (str(intercom_id), seq)},
        )
        excess = self.store.count(K.LOG_BY_INTERCOM, str(intercom_id)) - self.rules.device_log_limit
        if excess > 0:
            for record in self.store.page(K.LOG_BY_INTERCOM, str(intercom_id), limit=excess).records:
                self.store.delete(K.DEVICE_LOG, record.key)

    @_synchronized
    def device_log(self, ref: str | int, limit: int = 100) -> list[dict[str, Any]]:
        intercom = self._intercom_ref(ref)
        page = self.store.page(K.LOG_BY_INTERCOM, str(intercom.id), limit=limit, reverse=True)
        return [r.data for r in reversed(page.records)]

    @_synchronized
    def keypad_size(self, intercom_id: int) -> int:
        """How many working codes the device's keypad holds."""
        return self.store.count(K.KEYPAD_BY_INTERCOM, str(intercom_id))

    # ------------------------------------------------------------------ customers (Magicline)

    def _customer_record(self, customer_id: int) -> Customer | None:
        record = self.store.get(K.CUSTOMER, str(customer_id))
        return Customer.from_data(record.data) if record else None

    def _studio_customer(self, studio_id: int, customer_id: int) -> tuple[Customer, int]:
        record = self.store.get(K.CUSTOMER, str(customer_id))
        if record is None or record.data["studio_id"] != studio_id:
            raise NotFound("Customer", customer_id, field="customerId")
        return Customer.from_data(record.data), record.version

    def _save_customer(self, customer: Customer, *, expected_version: int | None) -> None:
        index = {
            K.CUSTOMERS_BY_STUDIO: (str(customer.studio_id), customer.id),
            f"{K.CUSTOMERS_BY_STUDIO}_status": (f"{customer.studio_id}:{customer.status}", customer.id),
        }
        try:
            self.store.put(
                K.CUSTOMER,
                str(customer.id),
                customer.to_data(),
                index=index,
                expected_version=expected_version,
            )
        except VersionConflict as exc:
            raise Conflict("The entity was modified by another request.") from exc

    @_synchronized
    def customers(
        self, studio_id: int, *, after: int | None, limit: int, status: str | None = None
    ) -> tuple[list[Customer], bool]:
        """A slice of a studio's customers ordered by id, after a cursor; and whether more follow."""
        if status is None:
            index, partition = K.CUSTOMERS_BY_STUDIO, str(studio_id)
        else:
            index, partition = f"{K.CUSTOMERS_BY_STUDIO}_status", f"{studio_id}:{status}"
        page = self.store.page(index, partition, limit=limit + 1, after=after)
        customers = [Customer.from_data(r.data) for r in page.records[:limit]]
        return customers, len(page.records) > limit

    @_synchronized
    def customer(self, studio_id: int, customer_id: int) -> Customer:
        return self._studio_customer(studio_id, customer_id)[0]

    @_synchronized
    def customer_access_code(self, studio_id: int, customer_id: int) -> Customer:
        """The customer with a current QR access code; an expired one is replaced by a fresh one."""
        customer, version = self._studio_customer(studio_id, customer_id)
        now = self._now_s()
        if customer.qr_content is None or customer.qr_expires_at is None or now >= customer.qr_expires_at:
            if customer.qr_content is not None:
                self.store.delete(K.QR, customer.qr_content)
            content = f"{self._rng.randrange(10**17):019d}"
            while self.store.exists(K.QR, content):
                content = f"{self._rng.randrange(10**17):019d}"
            customer.qr_content = content
            customer.qr_expires_at = int(now) + self.rules.qr_validity_seconds
            self.store.put(K.QR, content, {"customer_id": customer.id, "studio_id": studio_id})
            self._save_customer(customer, expected_version=version)
        return customer

    @staticmethod
    def _medium_key(studio_id: int, medium_type: str, value: str) -> str:
        return f"{studio_id}:{medium_type}:{value}"

    def _check_medium_value_free(self, studio_id: int, value: str, except_medium: int | None = None) -> None:
        """The vendor calls `value` the medium's unique identifier: within a studio, one value is one medium,
        whatever its type (a PIN may not repeat a card number). Other studios' mediums are not looked at: a
        tenant never learns of another's data."""
        for medium_type in MEDIUM_TYPES:
            alias = self.store.get(K.MEDIUM_VALUE, self._medium_key(studio_id, medium_type, value))
            if alias is not None and alias.data["medium_id"] != except_medium:
                raise Invalid("The value is already used by another access medium of this studio", field="value")

    @_synchronized
    def add_medium(self, studio_id: int, customer_id: int, medium_type: str, value: str) -> AccessMedium:
        if medium_type not in MEDIUM_TYPES:
            raise Invalid(f"Unknown access medium type {medium_type}", field="type")
        customer, version = self._studio_customer(studio_id, customer_id)
        self._check_medium_value_free(studio_id, value)
        medium = AccessMedium(id=self.store.next_id("medium", start=1_000_001), type=medium_type, value=value)
        customer.mediums.append(medium)
        self._save_customer(customer, expected_version=version)
        self._file_medium(studio_id, customer.id, medium)
        self._medium_changed(studio_id, customer.id, "CREATED", medium)
        return medium

    def _api_medium(self, customer: Customer, medium_id: int) -> AccessMedium:
        medium = customer.medium(medium_id)
        if medium is None:
            raise NotFound("Access medium", medium_id, field="accessMediumId")
        if not medium.via_api:
            raise NotAllowed(
                "Only access mediums created through the API may be changed or removed",
                field="accessMediumId",
            )
        return medium

    @_synchronized
    def update_medium(self, studio_id: int, customer_id: int, medium_id: int, value: str) -> AccessMedium:
        customer, version = self._studio_customer(studio_id, customer_id)
        medium = self._api_medium(customer, medium_id)
        self._check_medium_value_free(studio_id, value, except_medium=medium.id)
        self.store.delete(K.MEDIUM_VALUE, self._medium_key(studio_id, medium.type, medium.value))
        medium.value = value
        self._save_customer(customer, expected_version=version)
        self._file_medium(studio_id, customer.id, medium)
        self._medium_changed(studio_id, customer.id, "UPDATED", medium)
        return medium

    @_synchronized
    def delete_medium(self, studio_id: int, customer_id: int, medium_id: int) -> AccessMedium:
        customer, version = self._studio_customer(studio_id, customer_id)
        medium = self._api_medium(customer, medium_id)
        customer.mediums = [m for m in customer.mediums if m.id != medium_id]
        self._save_customer(customer, expected_version=version)
        self.store.delete(K.MEDIUM_VALUE, self._medium_key(studio_id, medium.type, medium.value))
        self._medium_changed(studio_id, customer.id, "DELETED", medium)
        return medium

    def _file_medium(self, studio_id: int, customer_id: int, medium: AccessMedium) -> None:
        """Index a medium's value, so the device can find whose card or PIN it is."""
        self.store.put(
            K.MEDIUM_VALUE,
            self._medium_key(studio_id, medium.type, medium.value),
            {"customer_id": customer_id, "medium_id": medium.id},
        )

    def _medium_changed(self, studio_id: int, customer_id: int, change: str, medium: AccessMedium) -> None:
        self._emit(
            MediumChanged(
                at=self.now(), studio_id=studio_id, customer_id=customer_id, change=change, medium=medium.public()
            )
        )

    # ------------------------------------------------------------------ whole state

    def snapshot_records(self) -> dict[str, Any]:
        with self._lock:
            return self.store.dump()

    def restore_records(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.store.load(state)
            self._events.clear()

    def clear(self) -> None:
        with self._lock:
            self.store.clear()
            self._events.clear()

    def save_meta(self, name: str, data: dict[str, Any]) -> int:
        """Keep a small named document with the state (the clock, for instance); answer its new version."""
        with self._lock, self.store.transaction():
            return self.store.put(K.META, name, data)

    def meta_versions(self, names: list[str]) -> list[tuple[int, dict[str, Any] | None]]:
        """Named documents' versions (0 when absent) and data: cheap to poll for another replica's change."""
        with self._lock:
            get_many = getattr(self.store, "get_many", None)  # one round trip where the backend offers it
            records = get_many(K.META, names) if get_many else [self.store.get(K.META, name) for name in names]
            return [(record.version, record.data) if record else (0, None) for record in records]

    def meta(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            record = self.store.get(K.META, name)
            return record.data if record else None


__all__ = ["Building", "Record", "Rules"]
