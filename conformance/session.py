"""An authenticated session with one target: clients per identity, what was discovered, the ledger, and the view
of the contract the run judges by.

Opening a session is the run's preflight: a server that does not answer, does not look like the API, refuses
the given credentials, or a test id that cannot be used, ends the run with exit code 2 (it could not be done),
not with a verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mockserver.contracts import Contract, load_contract

from .client import ApiClient, Exchange, ServerClock, Unreachable
from .deviations import Deviations
from .ledger import Ledger
from .pacing import RetryPolicy, Throttle
from .policy import SafetyPolicy
from .redact import Redactor
from .target import Options, Target

if TYPE_CHECKING:
    from .profile import Identity, VendorProfile

__all__ = ["RunAborted", "Session", "open_session"]


class RunAborted(RuntimeError):
    """The run cannot be done (exit code 2)."""


@dataclass
class Session:
    target: Target
    options: Options
    profile: VendorProfile
    #: the view the run judges by: the vendor's documented part, or everything under --strict
    contract: Contract
    client: ApiClient
    anonymous: ApiClient
    other: ApiClient | None
    limited: ApiClient | None
    policy: SafetyPolicy
    ledger: Ledger
    throttle: Throttle
    clock: ServerClock
    redactor: Redactor
    identity: Identity
    deviations: Deviations
    #: the user id behind the primary and the other identity (VMS)
    user_ids: dict[str, Any] = field(default_factory=dict)
    #: ids found on the server: `intercoms`, `codes` (Seam), `customers` (Magicline)
    discovered: dict[str, list[Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def api(self) -> str:
        return self.target.api

    @property
    def strict(self) -> bool:
        return self.contract.strict

    def deviate(self, check: str, operation: str, message: str) -> None:
        """The server differs from a mock choice: a note, or under --strict a failure (raised)."""
        self.deviations.report(check, operation, message)

    def close(self) -> None:
        self.client.close()


def open_session(target: Target, options: Options, listener: Callable[[Exchange], None] | None = None) -> Session:
    """Authenticate, discover ids and check the test ids; raises RunAborted when the run cannot be done."""
    from .profile import profile

    problems = target.problems()
    if problems:
        raise RunAborted("; ".join(problems))
    vendor = profile(target.api)
    contract = load_contract(target.api).view(strict=options.strict)
    throttle = Throttle(options.rate_for(target))
    clock = ServerClock()
    ledger = Ledger()
    redactor = Redactor(target.secrets())
    policy = SafetyPolicy(vendor, target, options, ledger, clock)

    def observe(exchange: Exchange) -> None:
        # Only what the run's own identity did is the run's: another tenant's answers teach nothing about it.
        if exchange.identity != "primary" or not 200 <= exchange.status < 300 or exchange.operation_id is None:
            return
        operation = contract.operation(exchange.operation_id)
        vendor.observe(
            ledger, exchange.operation_id, operation.path_params(exchange.path), exchange.request_json, exchange.json()
        )

    def resolve(method: str, path: str) -> str | None:
        operation = contract.find(method, path)
        return operation.operation_id if operation else None

    anonymous = ApiClient(
        target.base_url,
        headers=vendor.base_headers(),
        throttle=throttle,
        retry=RetryPolicy(),
        clock=clock,
        timeout=options.request_timeout,
        listeners=[observe] + ([listener] if listener else []),
        resolve=resolve,
    )
    try:
        primary = vendor.authenticate(anonymous, target.credentials)
        other_identity = vendor.authenticate(anonymous, target.other) if target.other is not None else None
        redactor.extend([i.secret for i in (primary, other_identity) if i is not None and i.secret is not None])
        session = Session(
            target=target,
            options=options,
            profile=vendor,
            contract=contract,
            client=anonymous.derive(identity="primary", headers=primary.headers),
            anonymous=anonymous,
            other=anonymous.derive(identity="other", headers=other_identity.headers) if other_identity else None,
            limited=(
                anonymous.derive(identity="limited", headers={"X-API-KEY": target.limited_api_key})
                if target.limited_api_key
                else None
            ),
            policy=policy,
            ledger=ledger,
            throttle=throttle,
            clock=clock,
            redactor=redactor,
            identity=primary,
            deviations=Deviations(options.strict),
            user_ids={
                "primary": primary.user_id,
                **({"other": other_identity.user_id} if other_identity is not None else {}),
            },
        )
        vendor.discover(session)
        vendor.check_setup(session)
    except Unreachable as exc:
        anonymous.close()
        raise RunAborted(f"the server at {target.base_url} did not answer: {redactor(str(exc))}") from None
    except RunAborted:
        anonymous.close()
        raise
    return session
