"""What a handler needs from the current request: the running mock, the request and the authenticated principal.

All of it comes from the request context (`mockserver.http.context`), which the mock's middleware opens for every
request, whichever path (the compiled pipeline or Connexion's stock chain) then serves it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..http.context import context
from ..http.headers import first_header, header_key, request_host

if TYPE_CHECKING:
    from starlette.requests import Request

    from ..runtime import Runtime


def request() -> Request:
    return context().request


def runtime() -> Runtime:
    return context().runtime


def principal() -> dict[str, Any]:
    """The token info the security handler answered for this request."""
    info = context().token_info
    assert info is not None, "an operation without security asked for its principal"
    return info


def header(name: str) -> str | None:
    return first_header(context().scope["headers"], header_key(name))


def base_url() -> str:
    # Straight from the scope: building the request's URL object costs more than the rest of a list page.
    served = context()
    scope = served.scope
    return served.runtime.base_url({"host": request_host(scope)}, scope.get("scheme", "http"))


def fresh_until(moment: float = math.inf) -> None:
    """Declare that this read's answer stays the same, as long as nothing is written, until the simulated clock
    reaches ``moment`` (epoch seconds; infinity when time alone never changes it). The compiled pipeline may then
    serve it again (`mockserver.http.read_cache`); the stock chain ignores it."""
    served = context()
    earlier = served.fresh_until
    served.fresh_until = moment if earlier is None else min(earlier, moment)


def require_bearer(api: str) -> dict[str, Any]:
    """Check the request's bearer token as ``api`` does, for an operation whose contract leaves its security to a
    mock choice (and so to the handler); raises the vendor's 401."""
    vendor = runtime().vendors[api]
    scheme, _, token = (header("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise vendor.unauthenticated(request())
    return vendor.verify_bearer(request(), token.strip(), {})  # type: ignore[attr-defined]
