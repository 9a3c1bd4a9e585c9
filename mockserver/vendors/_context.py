"""What a handler needs from the current request: the running mock, the request and the authenticated principal.

Handlers run under the compiled pipeline (which sets `mockserver.http.pipeline.current`) or under Connexion's
stock middleware chain (which sets Connexion's request context); both answer the same here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..http.headers import first_header, header_key, request_host
from ..http.middleware import token_info_of
from ..http.pipeline import current

if TYPE_CHECKING:
    from starlette.requests import Request

    from ..runtime import Runtime


def request() -> Request:
    served = current.get(None)
    if served is not None:
        return served.request
    from connexion import request as connexion_request

    return connexion_request  # type: ignore[return-value]


def runtime() -> Runtime:
    return request().scope["state"]["mock"]


def principal() -> dict[str, Any]:
    """The token info the security handler answered for this request."""
    info = token_info_of(request().scope)
    assert info is not None, "an operation without security asked for its principal"
    return info


def header(name: str) -> str | None:
    return first_header(request().scope["headers"], header_key(name))


def base_url() -> str:
    # Straight from the scope: building the request's URL object costs more than the rest of a list page.
    scope = request().scope
    return runtime().base_url({"host": request_host(scope)}, scope.get("scheme", "http"))


def fresh_until(moment: float = math.inf) -> None:
    """Declare that this read's answer stays the same, as long as nothing is written, until the simulated clock
    reaches ``moment`` (epoch seconds; infinity when time alone never changes it). The compiled pipeline may then
    serve it again (`mockserver.http.read_cache`); the stock chain ignores it."""
    served = current.get(None)
    if served is not None:
        earlier = served.fresh_until
        served.fresh_until = moment if earlier is None else min(earlier, moment)


def require_bearer(api: str) -> dict[str, Any]:
    """Check the request's bearer token as ``api`` does, for an operation whose contract leaves its security to a
    mock choice (and so to the handler); raises the vendor's 401."""
    vendor = runtime().vendors[api]
    scheme, _, token = (header("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise vendor.unauthenticated(request())  # type: ignore[arg-type]
    return vendor.verify_bearer(request(), token.strip(), {})  # type: ignore[attr-defined]
