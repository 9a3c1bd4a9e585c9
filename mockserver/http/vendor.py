"""What every vendor adapter provides to the shared plumbing: its prefix, contract and error bodies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connexion.lifecycle import ConnexionRequest

from ..domain.errors import DomainError
from .errors import ApiError, FieldError

if TYPE_CHECKING:
    from ..choices import ChoiceBoard
    from ..domain.building import Building
    from ..domain.clock import ManualClock
    from ..runtime import Settings
    from .ratelimit import Limiter
    from .security import Revision


class Vendor:
    """One vendor API as the mock serves it. Subclasses render every error in the vendor's own body."""

    #: the contract's name and the URL prefix it is served under
    name: str = ""
    prefix: str = ""

    def __init__(
        self,
        *,
        building: Building,
        clock: ManualClock,
        settings: Settings,
        limiter: Limiter,
        choices: ChoiceBoard,
    ) -> None:
        self.building = building
        self.clock = clock
        #: the running mock's settings, which the control API changes in place
        self.settings = settings
        self.limiter = limiter
        #: the choices in force, which the control API switches while the mock runs
        self.choices = choices

    # --- who may call

    def security_map(self, revision: Revision | None) -> dict[str, type]:
        """Connexion's security map for this vendor's contract (see `mockserver.http.security`)."""
        raise NotImplementedError

    # --- who is calling (for faults, limits and the journal)

    def tenant(self, token_info: dict[str, Any] | None) -> str | None:
        return None if token_info is None else str(token_info.get("tenant"))

    # --- error bodies; each answers an ApiError to raise or return

    def invalid(self, request: ConnexionRequest, error: FieldError, operation_id: str | None) -> ApiError:
        raise NotImplementedError

    def unauthenticated(self, request: ConnexionRequest) -> ApiError:
        raise NotImplementedError

    def forbidden(self, request: ConnexionRequest, message: str) -> ApiError:
        raise NotImplementedError

    def not_found(self, request: ConnexionRequest, message: str) -> ApiError:
        raise NotImplementedError

    def method_not_allowed(self, request: ConnexionRequest, allowed: str) -> ApiError:
        raise NotImplementedError

    def domain_error(self, request: ConnexionRequest, error: DomainError, operation_id: str | None) -> ApiError:
        raise NotImplementedError

    def rate_limited(self, request: ConnexionRequest, retry_after: int) -> ApiError:
        raise NotImplementedError

    def status(self, request: ConnexionRequest, status: int, operation_id: str | None) -> ApiError:
        """The vendor's body for any status its contract declares (used by faults)."""
        raise NotImplementedError

    def server_error(self, request: ConnexionRequest) -> ApiError:
        return self.status(request, 500, None)

    # --- before Connexion sees the request

    def intercept(self, method: str, path: str, headers: dict[bytes, bytes]) -> int | None:
        """A status to answer at once, with an empty body, before routing; None lets the request through."""
        return None

    # --- before the handler runs (after security): rate limits

    async def limit(self, request: ConnexionRequest, operation_id: str, token_info: dict[str, Any] | None) -> None:
        """Raise the vendor's 429 when a rate limit is exceeded."""
