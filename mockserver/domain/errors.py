"""What the building refuses, and why. Adapters turn these into each vendor's statuses and bodies."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal. ``code`` is a stable name; ``field`` names the offending input, if any."""

    code = "domain_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The entity does not exist, or belongs to another tenant (which must look the same)."""

    code = "not_found"

    def __init__(self, entity: str, ident: object, *, field: str | None = None) -> None:
        super().__init__(f"{entity} {ident} does not exist", field=field)
        self.entity = entity
        self.ident = ident


class Invalid(DomainError):
    """The input breaks a rule of the building (a past expiry, a duplicate medium value, ...)."""

    code = "invalid"


class Conflict(DomainError):
    """Someone else changed the entity since it was read (a stale compare-and-set)."""

    code = "conflict"


class NotAllowed(DomainError):
    """The caller may not do this to this entity (e.g. change a medium not created through the API)."""

    code = "not_allowed"


class Unauthenticated(DomainError):
    """Unknown credentials."""

    code = "unauthenticated"


class TooManySessions(DomainError):
    """The user has as many sessions as allowed; ``session_id`` names one that can be ended."""

    code = "too_many_sessions"

    def __init__(self, message: str, *, session_id: str) -> None:
        super().__init__(message)
        self.session_id = session_id


class DeviceOffline(DomainError):
    """The intercom cannot be reached."""

    code = "device_offline"
