"""The building's records. Each converts to and from the plain data the store keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MEDIUM_TYPES = ("CARD_NUMBER", "PIN", "BARCODE", "WALLET_PASS")
CUSTOMER_STATUSES = ("MEMBER", "PROSPECT", "FORMER_MEMBER")
MAGICLINE_SCOPES = ("CUSTOMER_READ", "CUSTOMER_ACCESS_MEDIUM_WRITE")


def _plain(record: Any) -> dict[str, Any]:
    """A record's fields as plain data: a shallow copy, lists copied (dataclasses.asdict is a slow deep copy)."""
    return {name: list(value) if isinstance(value, list) else value for name, value in vars(record).items()}


#: a VMS code stays listed (as expired) this long after it expires, then it is gone
GRACE_SECONDS = 24 * 3600


@dataclass
class Owner:
    """An intercom owner: a VMS user and, through OAuth, a Seam-connected account."""

    id: int
    uuid: str
    login: str
    password: str
    name: str
    created_at: int | None = None
    updated_at: int | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Owner:
        return cls(**data)

    def to_data(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class Studio:
    """A Magicline tenant."""

    id: int
    name: str

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Studio:
        return cls(**data)

    def to_data(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class Intercom:
    id: int
    uuid: str
    owner_id: int
    title: str
    model: str = "doorcodes-sim-1"
    address: str = ""
    department: int = 100
    online: bool = True
    #: epoch seconds; None where the vendor shows null
    created_at: int | None = None
    #: epoch microseconds
    updated_at: int = 0
    admits_studios: list[int] = field(default_factory=list)
    unlock_ms: int = 5000
    #: epoch milliseconds until which the door stands unlocked
    unlocked_until_ms: int | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Intercom:
        return cls(**data)

    def to_data(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class AccessCode:
    id: int
    uuid: str
    intercom_id: int
    #: the VMS user who created it (None for codes programmed otherwise)
    created_by: int | None
    #: the Seam owner_id: the person the code belongs to
    owner_uuid: str
    title: str
    digits: str
    #: epoch seconds
    expired_at: int
    created_at: int

    @property
    def will_deleted_at(self) -> int:
        return self.expired_at + GRACE_SECONDS

    def is_expired(self, now: float) -> bool:
        return now > self.expired_at

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> AccessCode:
        return cls(**data)

    def to_data(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class AccessMedium:
    id: int
    type: str
    value: str
    #: only mediums created through the API may be changed or removed through it
    via_api: bool = True

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "value": self.value}


@dataclass
class Customer:
    id: int
    studio_id: int
    first_name: str
    last_name: str
    status: str = "MEMBER"
    email: str | None = None
    uuid: str | None = None
    customer_number: str | None = None
    date_of_birth: str | None = None
    gender: str | None = None
    access_refusal: bool = False
    created_at: int | None = None
    mediums: list[AccessMedium] = field(default_factory=list)
    #: the current QR access code: content and expiry (epoch seconds)
    qr_content: str | None = None
    qr_expires_at: int | None = None

    def medium(self, medium_id: int) -> AccessMedium | None:
        for medium in self.mediums:
            if medium.id == medium_id:
                return medium
        return None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Customer:
        data = dict(data)
        data["mediums"] = [AccessMedium(**m) for m in data.get("mediums", [])]
        return cls(**data)

    def to_data(self) -> dict[str, Any]:
        data = _plain(self)
        data["mediums"] = [_plain(m) for m in self.mediums]
        return data


@dataclass
class Decision:
    """What a device decided about a credential presented to it."""

    granted: bool
    reason: str
    detail: str = ""
    unlocked_until_ms: int | None = None
