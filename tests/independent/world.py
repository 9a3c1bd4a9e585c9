"""The one building behind all three APIs: owners, intercoms, visitor codes, studios' customers.

Each owner is one VMS user and one Seam account; each intercom has an integer VMS id and a UUID for Seam;
a code is one row seen through both. Nothing here knows about HTTP.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
# (kind, user_id, subject, origin socket id): kind "store" carries a Code, "delete" a list of code ids.
Listener = Callable[[str, int, object, str | None], None]

KEEP_AFTER_EXPIRY = timedelta(hours=24)
MEDIUM_TYPES = ("CARD_NUMBER", "PIN", "BARCODE", "WALLET_PASS")


@dataclass
class Owner:
    user_id: int
    login: str
    password: str
    name: str
    email: str
    seam_id: str


@dataclass
class Intercom:
    id: int
    uuid: str
    user_id: int
    title: str
    address: str
    department: int
    model: str
    is_online: bool
    confirmed: bool
    created_at: datetime
    updated_at: datetime


@dataclass
class Code:
    id: int
    uuid: str
    intercom_id: int
    user_id: int
    title: str
    code: str
    expired_at: datetime
    created_at: datetime

    @property
    def will_deleted_at(self) -> datetime:
        return self.expired_at + KEEP_AFTER_EXPIRY


@dataclass
class Medium:
    id: int
    type: str
    value: str
    by_api: bool


@dataclass
class Customer:
    id: int
    studio: int
    first_name: str
    last_name: str
    status: str
    created_at: datetime
    mediums: list[Medium] = field(default_factory=list)


@dataclass
class ApiKey:
    studio: int
    scopes: frozenset[str]


def system_clock() -> datetime:
    return datetime.now(UTC)


class World:
    def __init__(self, clock: Clock = system_clock, seed: int = 20261201) -> None:
        self.clock = clock
        self.rng = random.Random(seed)
        self.owners: dict[int, Owner] = {}
        self.intercoms: dict[int, Intercom] = {}
        self.codes: dict[int, Code] = {}
        self.customers: dict[int, Customer] = {}
        self.vms_tokens: dict[str, int] = {}  # "id|secret" -> user id
        self.seam_tokens: dict[str, int] = {}  # access token -> user id
        self.seam_grants: dict[str, tuple[int, datetime]] = {}  # authorization code -> (user id, expiry)
        self.api_keys: dict[str, ApiKey] = {}
        self.listeners: list[Listener] = []
        self._next_code_id = 1388
        self._next_token_id = 1
        _seed(self)

    # ids and secrets come from one seeded generator, so a run is reproducible
    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def secret(self, length: int = 40) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def issue_vms_token(self, user_id: int) -> tuple[int, str]:
        token_id, self._next_token_id = self._next_token_id, self._next_token_id + 1
        token = f"{token_id}|{self.secret()}"
        self.vms_tokens[token] = user_id
        return token_id, token

    def issue_seam_token(self, user_id: int) -> str:
        token = "seam_at_" + self.secret(32)
        self.seam_tokens[token] = user_id
        return token

    def owner_by_login(self, login: str, password: str) -> Owner | None:
        for owner in self.owners.values():
            if owner.login == login and owner.password == password:
                return owner
        return None

    # codes: an expired code stays (is_expired) until will_deleted_at, then it is gone
    def live_codes(self) -> list[Code]:
        now = self.clock()
        for code in [c for c in self.codes.values() if c.will_deleted_at <= now]:
            del self.codes[code.id]
        return sorted(self.codes.values(), key=lambda c: c.id)

    def create_code(self, intercom: Intercom, title: str, expired_at: datetime, origin: str | None = None) -> Code:
        taken = {c.code for c in self.live_codes() if c.intercom_id == intercom.id}
        digits = "".join(self.rng.choice("123456789") for _ in range(5))
        while digits in taken:
            digits = "".join(self.rng.choice("123456789") for _ in range(5))
        code = Code(
            self._next_code_id, self.new_uuid(), intercom.id, intercom.user_id, title, digits, expired_at, self.clock()
        )
        self._next_code_id += 1
        self.codes[code.id] = code
        self._emit("store", code.user_id, code, origin)
        return code

    def delete_codes(self, user_id: int, ids: list[int], origin: str | None = None) -> list[int]:
        """Deletes those of `ids` that are the user's live codes; the rest are ignored."""
        live = {c.id for c in self.live_codes() if c.user_id == user_id}
        gone = sorted(set(ids) & live)
        for code_id in gone:
            del self.codes[code_id]
        if gone:
            self._emit("delete", user_id, gone, origin)
        return gone

    def _emit(self, kind: str, user_id: int, subject: object, origin: str | None) -> None:
        for listener in self.listeners:
            listener(kind, user_id, subject, origin)

    def customer_mediums(self, studio: int) -> list[Medium]:
        return [m for c in self.customers.values() if c.studio == studio for m in c.mediums]

    def new_medium_id(self) -> int:
        return self.rng.randrange(10**9, 10**12)


FIRST_NAMES = ["Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Lena", "Max"]
LAST_NAMES = ["Weber", "Schulz", "Becker", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Braun", "Zimmer"]


def _seed(world: World) -> None:
    now = world.clock()
    ref = datetime(2024, 3, 5, 9, 30, 12, 123456, tzinfo=UTC)
    for user_id, login, name in [(1, "anna.resident", "Anna Resident"), (2, "boris.resident", "Boris Resident")]:
        world.owners[user_id] = Owner(user_id, login, f"secret-{login}", name, f"{login}@example.com", world.new_uuid())
    intercoms = [
        (180, 1, "House", "Main street 1", True, True),
        (181, 1, "Garage", "Main street 1, garage", False, True),
        (182, 1, "Back gate", "Main street 1, yard", True, False),
        (183, 2, "Front door", "Harbour road 7", True, True),
        (184, 2, "Yard", "Harbour road 7, yard", True, True),
    ]
    for n, (vms_id, user_id, title, address, online, confirmed) in enumerate(intercoms):
        created = ref + timedelta(days=n, microseconds=n * 1111)
        world.intercoms[vms_id] = Intercom(
            vms_id, world.new_uuid(), user_id, title, address, 100 + n, "IC-200", online, confirmed, created,
            created + timedelta(days=30, seconds=n),
        )  # fmt: skip
    minute = now.replace(second=0, microsecond=0)
    for vms_id, title, expires in [
        (180, "Courier", timedelta(days=3)),
        (180, "Cleaner", timedelta(hours=-2)),
        (180, "Disposable", timedelta(days=7)),
        (181, "Nanny", timedelta(days=5)),
        (183, "Guest", timedelta(days=2)),
    ]:
        world.create_code(world.intercoms[vms_id], title, minute + expires)
    for user_id in world.owners:
        world.issue_seam_token(user_id)

    world.api_keys = {
        "ml-studio1-full-" + world.secret(16): ApiKey(1, frozenset({"CUSTOMER_READ", "CUSTOMER_ACCESS_MEDIUM_WRITE"})),
        "ml-studio1-read-" + world.secret(16): ApiKey(1, frozenset({"CUSTOMER_READ"})),
        "ml-studio2-full-" + world.secret(16): ApiKey(2, frozenset({"CUSTOMER_READ", "CUSTOMER_ACCESS_MEDIUM_WRITE"})),
    }
    for n in range(24):
        studio = 1 + n % 2
        customer = Customer(
            world.rng.randrange(10**9, 10**10),
            studio,
            FIRST_NAMES[(n * 5) % len(FIRST_NAMES)],
            LAST_NAMES[(n * 7) % len(LAST_NAMES)],
            "PROSPECT" if n % 6 in (4, 5) else "MEMBER",  # a third of each studio
            ref + timedelta(days=40 + n),
        )
        if customer.status == "MEMBER":
            card = str(world.rng.randrange(10**9, 10**10))
            customer.mediums.append(Medium(world.new_medium_id(), "CARD_NUMBER", card, by_api=False))
        world.customers[customer.id] = customer
