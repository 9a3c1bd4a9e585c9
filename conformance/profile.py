"""What differs between the three vendor APIs, in one place per vendor (`conformance/vendors/`): how a session
authenticates, which operations log in, open doors, grant access or destroy, how a generated case is made safe,
what a response tells the ledger, how the run cleans up, which state machines run, and the per-operation
Schemathesis settings. The engine, the session, the safety policy and the generic run are the same for all.

`profile(api)` gives a vendor's profile.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .client import ApiClient
    from .ledger import Ledger
    from .policy import SafetyPolicy
    from .scenarios import ScenarioContext
    from .session import Session
    from .stateful import MachineSpec
    from .target import Credentials, Target

__all__ = ["Identity", "VendorProfile", "profile"]


@dataclass(frozen=True)
class Identity:
    """One tenant as the server knows it: the headers that authenticate it, and what logging in told."""

    headers: dict[str, str]
    user_id: Any = None
    #: a token the run learned (not given by the user), to keep out of reports
    secret: str | None = None


class VendorProfile:
    """A vendor API as the suite treats it. Subclasses fill in the class attributes and override the hooks."""

    api: ClassVar[str]
    #: credential fields a target of this API needs, and the flag spelling of the other tenant's
    needed_credentials: ClassVar[tuple[str, ...]]
    other_credentials: ClassVar[tuple[str, ...]]
    #: operations that log in (no generated cases: no credential guessing)
    login_operations: ClassVar[frozenset[str]] = frozenset()
    #: operations that open a door
    door_operations: ClassVar[frozenset[str]] = frozenset()
    #: operations that make something that works at a door, with the target id they need
    granting_operations: ClassVar[Mapping[str, str]] = {}
    #: operations that change or remove something by id
    destructive_operations: ClassVar[frozenset[str]] = frozenset()
    #: the target id without which this run creates nothing a destructive operation could safely touch
    own_things_need: ClassVar[str | None] = None
    #: valid-looking data the vendor rightly refuses with these statuses (domain rules a schema cannot express)
    domain_refusals: ClassVar[Mapping[str, list[str]]] = {}
    #: server errors the vendor documents as answers ("*": every operation)
    documented_server_errors: ClassVar[Mapping[str, list[str]]] = {}
    #: rate-limited by design: a few cases, and a 429 is an answer
    gentle_operations: ClassVar[frozenset[str]] = frozenset()
    #: the ledger kind of what this vendor's state machines create or delete
    ledger_kind: ClassVar[str] = ""

    # -------------------------------------------------------------- session

    def base_headers(self) -> dict[str, str]:
        """Headers every request of the run carries."""
        return {"Accept": "application/json"}

    def authenticate(self, anonymous: ApiClient, credentials: Credentials) -> Identity:
        """The identity behind one tenant's credentials; raises `RunAborted` when the server refuses them."""
        raise NotImplementedError

    def schemathesis_auth(self, identity: Identity) -> dict[str, Any]:
        """Schemathesis' `auth` configuration for the primary identity."""
        value = identity.headers.get("Authorization", "")
        return {"openapi": {"bearerAuth": {"bearer": value.removeprefix("Bearer ")}}}

    def discover(self, session: Session) -> None:
        """Find ids to read (never to write: writes use only the ids the user names)."""

    def check_setup(self, session: Session) -> None:
        """Refuse the run (`RunAborted`, naming the option) when a given test id cannot be used."""

    # -------------------------------------------------------------- safety

    def destructive_reason(self, target: Target) -> str | None:
        """Why destructive operations get no generated cases without --allow-destructive, or None."""
        need = self.own_things_need
        if need and getattr(target, need) is None:
            return f"without {need} this run creates nothing of its own to change (or pass --allow-destructive)"
        return None

    def make_safe(self, policy: SafetyPolicy, operation_id: str | None, path: dict[str, Any], body: Any) -> Any:
        """Make one generated request safe (``path`` in place); answers the body to send."""
        return body

    def observe(
        self,
        ledger: Ledger,
        operation_id: str | None,
        path: dict[str, Any],
        request_body: Any,
        body: Any,
    ) -> None:
        """Learn what a successful request of the primary identity created or deleted."""

    def prepare_resources(self, ctx: ScenarioContext) -> None:
        """Create a few things of the run's own, so generated writes have something safe to touch."""

    def cleanup(self, client: ApiClient, ledger: Ledger) -> list[str]:
        """Remove what the run created and is still there; answers notes about what could not be removed."""
        return []

    # -------------------------------------------------------------- judging

    def keeps_failure(self, code: str, method: str) -> bool:
        """Whether a generic check's failure (by its code) on a request of ``method`` stands for this vendor."""
        return True

    def refused_fields(self, status: int, body: Any) -> set[str] | None:
        """The fields a refusal names in the vendor's error body (None: the body does not say)."""
        return None

    @property
    def machines(self) -> list[MachineSpec]:
        return []


_MODULES = {
    "vms": "conformance.vendors.vms",
    "seam": "conformance.vendors.seam",
    "magicline": "conformance.vendors.magicline",
}


def profile(api: str) -> VendorProfile:
    """The profile of one vendor API."""
    module = importlib.import_module(_MODULES[api])
    return module.PROFILE
