"""The answer to a request the shared building could not serve in time (`StoreUnavailable`: Redis out of reach, or
other replicas committing first past the deadline): in the vendor's body, at a status the operation declares.

- An operation that declares 503 gets it: every Magicline operation that reads the building (`SERVICE_UNAVAILABLE`).
- VMS declares no server error anywhere. Every VMS operation declares 429, Laravel's "Too Many Attempts." with
  ``Retry-After``: the one declared answer that tells a client to send the same request again shortly, which is
  what an unavailable building asks of it.
- Seam declares 500 on the two operations that drive a device (unlock, delete a code), with an error id; those get
  500 and the id ``SERVICE_UNAVAILABLE``. The others declare only client errors besides success: 404 would say the
  thing is gone, so they get 400 (the request could not be served as sent) with that id and a message that says to
  try again; the one that declares neither, listing the intercoms, gets 401 with that id.
"""

from __future__ import annotations

from connexion.lifecycle import ConnexionRequest

from ..contracts import load_contract
from .errors import ApiError
from .vendor import Vendor

#: seconds a client is asked to wait before it tries again
RETRY_AFTER_S = 1
MESSAGE = "The building is busy or out of reach; try again shortly"


def unavailable(vendor: Vendor, request: ConnexionRequest, operation_id: str | None) -> ApiError:
    """The vendor's answer to a request that met `StoreUnavailable` (see the module docstring)."""
    declared = load_contract(vendor.name).operation(operation_id).statuses if operation_id else frozenset()
    if 503 in declared:
        return vendor.status(request, 503, operation_id)
    if 429 in declared:
        return vendor.rate_limited(request, RETRY_AFTER_S)
    if vendor.name == "seam":
        for status in (500, 400, 401):
            if status in declared:
                return ApiError(status, {"error_id": "SERVICE_UNAVAILABLE", "error_message": MESSAGE})
    return vendor.server_error(request)  # no operation was routed: there is no declaration to choose from
