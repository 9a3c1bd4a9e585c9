"""Typed failures of the domain checks.

Every failure names the check that raised it (``failure.check``), so a report can group by check and a test can
assert which check caught a planted bug. They subclass Schemathesis' ``Failure``: a registered Schemathesis check
may raise them as they are, and our own scenario code raises the very same classes.

    ConformanceFailure
     ├── ErrorBodyMismatch        an error answer is not the vendor's error body
     ├── FieldMismatch            a field breaks a rule the schema cannot express (digits, +24 h, echo)
     ├── ExpiryMismatch           `is_expired` / `will_deleted_at` disagree with the clock or `expired_at`
     ├── PagingBroken             totals, windows, links, duplicates or gaps across pages
     ├── ValidationFieldMissing   a 422/400 does not name the offending field
     ├── StateMismatch            the server forgot, duplicated, resurrected or changed data
     ├── FilterLeak               a filtered list holds items outside the filter
     ├── PushMismatch             a documented push did not arrive, or reached the device that caused it
     ├── AuthNotEnforced          missing, wrong or mis-named credentials were accepted
     ├── ScopeNotEnforced         a key without the required scope was allowed
     ├── TenantLeak               one tenant saw or changed another tenant's data
     └── UnexpectedStatus         a step answered a status its contract does not give for the case
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from schemathesis.core.failures import Failure, Severity

if TYPE_CHECKING:
    from .client import Exchange

__all__ = [
    "AuthNotEnforced",
    "ConformanceFailure",
    "ErrorBodyMismatch",
    "ExpiryMismatch",
    "FieldMismatch",
    "FilterLeak",
    "PagingBroken",
    "PushMismatch",
    "ScopeNotEnforced",
    "StateMismatch",
    "TenantLeak",
    "UnexpectedStatus",
    "ValidationFieldMissing",
]


class ConformanceFailure(Failure):
    """A domain check found the server breaking its contract."""

    code: ClassVar[str] = "DC900"
    kind_title: ClassVar[str] = "Conformance check failed"
    default_severity: ClassVar[Severity] = Severity.HIGH

    __slots__ = ("check", "steps")

    def __init__(
        self,
        *,
        check: str,
        message: str,
        operation: str | None = None,
        title: str | None = None,
        steps: tuple[Exchange, ...] = (),
        severity: Severity | None = None,
    ) -> None:
        super().__init__(
            operation=operation,
            title=title,
            message=message,
            severity=severity or self.default_severity,
        )
        self.check = check
        # the exchanges that led here, oldest first (reports render them as redacted curl lines)
        self.steps = steps

    @property
    def _unique_key(self) -> str:
        # One finding per check and message per operation: Schemathesis de-duplicates on this.
        return f"{self.check}|{self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only constructors do not pickle by default; Hypothesis and xdist may copy failures.
        return (_rebuild, (type(self), self.check, self.message, self.operation, self.title, self.steps))


def _rebuild(
    cls: type[ConformanceFailure],
    check: str,
    message: str,
    operation: str | None,
    title: str | None,
    steps: tuple[Exchange, ...],
) -> ConformanceFailure:
    return cls(check=check, message=message, operation=operation, title=title, steps=steps)


class ErrorBodyMismatch(ConformanceFailure):
    code = "DC101"
    kind_title = "Error body is not the vendor's"


class FieldMismatch(ConformanceFailure):
    code = "DC102"
    kind_title = "Field breaks a contract rule"


class ExpiryMismatch(ConformanceFailure):
    code = "DC103"
    kind_title = "Expiry disagrees with the clock"


class PagingBroken(ConformanceFailure):
    code = "DC104"
    kind_title = "Paging invariant broken"


class ValidationFieldMissing(ConformanceFailure):
    code = "DC105"
    kind_title = "Validation error does not name the field"
    default_severity = Severity.MEDIUM


class StateMismatch(ConformanceFailure):
    code = "DC201"
    kind_title = "Server state disagrees with what was done"


class FilterLeak(ConformanceFailure):
    code = "DC202"
    kind_title = "Filtered list holds foreign items"


class PushMismatch(ConformanceFailure):
    code = "DC203"
    kind_title = "Push not as documented"


class AuthNotEnforced(ConformanceFailure):
    code = "DC301"
    kind_title = "Authentication not enforced"
    default_severity = Severity.CRITICAL


class ScopeNotEnforced(ConformanceFailure):
    code = "DC302"
    kind_title = "Scope not enforced"
    default_severity = Severity.CRITICAL


class TenantLeak(ConformanceFailure):
    code = "DC303"
    kind_title = "Tenant isolation broken"
    default_severity = Severity.CRITICAL


class UnexpectedStatus(ConformanceFailure):
    code = "DC401"
    kind_title = "Unexpected status"
