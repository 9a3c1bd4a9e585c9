"""Things that happened in the building, collected during an operation and handed out after it commits.

Subscribers (the VMS push hub, Magicline webhooks, logs) turn them into their own messages. ``origin`` is an
opaque marker of who caused the event (for VMS: the requesting device's socket id, which must not get its own
push).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Event:
    at: datetime


@dataclass(frozen=True)
class CodeCreated(Event):
    code_id: int
    intercom_id: int
    user_id: int | None
    origin: str | None = None


@dataclass(frozen=True)
class CodesDeleted(Event):
    #: creator's user id -> ids of that user's codes that were deleted
    by_user: dict[int | None, list[int]]
    #: why: "vms", "seam", "control" or "expiry"
    via: str
    origin: str | None = None


@dataclass(frozen=True)
class DoorUnlocked(Event):
    intercom_id: int
    until: datetime
    by: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DoorLocked(Event):
    """The door relocked on its own once its unlock time was over (``at`` is that moment)."""

    intercom_id: int


@dataclass(frozen=True)
class AccessDecided(Event):
    intercom_id: int
    kind: str
    granted: bool
    reason: str


@dataclass(frozen=True)
class ConnectivityChanged(Event):
    intercom_id: int
    online: bool
    synced: int = 0


@dataclass(frozen=True)
class MediumChanged(Event):
    studio_id: int
    customer_id: int
    #: CREATED, UPDATED or DELETED
    change: str
    medium: dict[str, Any]
