"""The rules that make a run safe against a real server.

1. PUT and DELETE touch only what this run created (unless `--allow-destructive`), and everything this run
   created is removed at the end (the vendor profile's `cleanup`).
2. Writes that grant real access go only to the test intercom (VMS `--intercom-id`) or the test customer
   (Magicline `--customer-id`), VMS codes with the shortest expiry the API allows; without the id, those
   operations and checks are skipped with a note. Seam has no create: its delete uses `--disposable-code-id` only.
3. Login endpoints get no generated cases (that would be password guessing); one scenario logs in properly.
4. No door opens unless `--allow-door-unlock`.
5. Requests stay under `--max-rps` (`pacing`).
6. `--read-only` sends only GET and HEAD (plus the login a VMS session needs).

Generated cases are made safe at the last moment (`hooks.before_call`): an id that could name someone's real
resource is replaced by one of ours. Values that cannot be an id (the negative cases) are left alone, so the
server's validation is still exercised.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mockserver.contracts import Contract

    from .client import ServerClock
    from .ledger import Created, Ledger
    from .profile import VendorProfile
    from .target import Options, Target

__all__ = ["SafetyPolicy", "SafetyRefusal", "id_like", "shortest_expiry", "uuid_like"]

#: minutes added to the next whole minute of the server's clock: the earliest `expired_at` VMS accepts (it must
#: lie in the future at `Y-m-d H:i` precision) with room for the request's own latency
EXPIRY_MARGIN_MINUTES = 2


class SafetyRefusal(RuntimeError):
    """A generated request could not be made safe, so it is not sent."""


_ID_LIKE = re.compile(r"\s*\+?0*([0-9]{1,19})\s*")


def id_like(value: Any) -> bool:
    """Whether a server could read `value` as an existing numeric id (so it must not reach a write)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 1
    if isinstance(value, float):
        return value.is_integer() and value >= 1
    if isinstance(value, str):
        match = _ID_LIKE.fullmatch(value)
        return match is not None and int(match.group(1)) >= 1
    return False


def uuid_like(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value.strip())
    except ValueError:
        return False
    return True


def shortest_expiry(now: datetime) -> datetime:
    """The earliest `expired_at` a VMS server accepts (with a margin), at minute precision."""
    whole = now.replace(second=0, microsecond=0)
    if whole < now:
        whole += timedelta(minutes=1)
    return whole + timedelta(minutes=EXPIRY_MARGIN_MINUTES)


@dataclass
class SafetyPolicy:
    """The safety rules for one target."""

    profile: VendorProfile
    target: Target
    options: Options
    ledger: Ledger
    clock: ServerClock
    _cycle: dict[str, Iterator[Any]] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return self.profile.api

    # -------------------------------------------------------------- what may run

    def excluded(self, contract: Contract) -> dict[str, str]:
        """Operations generated cases must not reach, with the reason (shown as a note)."""
        result: dict[str, str] = {}
        for operation in contract.operations.values():
            reason = self.exclusion(operation.operation_id, operation.method, operation.invented)
            if reason:
                result[operation.operation_id] = reason
        return result

    def exclusion(self, operation_id: str, method: str, invented: bool = False) -> str | None:
        t, o, p = self.target, self.options, self.profile
        if invented:
            return "the mock's own implementation detail (x-mock-choice), not a vendor operation"
        if operation_id in p.login_operations:
            return "login endpoints get no generated cases (no credential guessing); the login scenario covers them"
        if o.read_only and method not in ("GET", "HEAD"):
            return t.spell("read_only")
        if operation_id in p.door_operations:
            if not o.allow_door_unlock:
                return f"opens a real door; {t.spell('allow_door_unlock')} lets the run test it"
            if p.own_things_need and getattr(t, p.own_things_need) is None:
                return f"opens a door; needs {t.spell(p.own_things_need)} (the test one)"
        needed = p.granting_operations.get(operation_id)
        if needed and getattr(t, needed) is None:
            return f"creates a working credential; needs {t.spell(needed)} (the test one)"
        if operation_id in p.destructive_operations and not o.allow_destructive:
            reason = p.destructive_reason(t)
            if reason:
                return reason
        return None

    def missing(self, needs: tuple[str, ...], writes: bool) -> str | None:
        """Why a scenario with these needs cannot run, or None."""
        t, o = self.target, self.options
        if writes and o.read_only:
            return t.spell("read_only")
        for need in needs:
            if need == "other" and (t.other is None or t.other.is_empty()):
                names = "/".join(t.spell(f"other_{name}") for name in self.profile.other_credentials)
                return f"needs another tenant's credentials ({names})"
            if need == "door" and not o.allow_door_unlock:
                return f"opens a door; needs {t.spell('allow_door_unlock')}"
            if (
                need in ("intercom_id", "customer_id", "disposable_code_id", "limited_api_key")
                and getattr(t, need) is None
            ):
                return f"needs {t.spell(need)}"
        return None

    # -------------------------------------------------------------- making cases safe

    def expiry_text(self) -> str:
        return shortest_expiry(self.clock.now()).strftime("%Y-%m-%d %H:%M")

    def next_owned(self, kind: str) -> Created | None:
        """One of the run's own live things of a kind, rotating so one DELETE does not leave every later case
        pointing at a gone id."""
        live = self.ledger.items(kind, live=True) or self.ledger.items(kind)
        if not live:
            return None
        index = next(self._cycle.setdefault(kind, itertools.count()))
        return live[index % len(live)]

    def prepare(self, operation_id: str | None, path: dict[str, Any], body: Any) -> Any:
        """Make one generated request safe (in place for `path`); returns the body to send."""
        return self.profile.make_safe(self, operation_id, path, body)
