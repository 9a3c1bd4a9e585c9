"""Security handlers for Connexion's security map, bound to one running mock.

Connexion instantiates a handler class per security scheme; these classes close over a verification
function that looks the credential up in the building. A missing credential answers Connexion's NO_VALUE (so
Connexion raises its 401, which the vendor renders); a wrong one raises the vendor's own error.
"""

from __future__ import annotations

import typing as t

from connexion.lifecycle import ConnexionRequest
from connexion.security import NO_VALUE, AbstractSecurityHandler

from .headers import first_header, header_key

#: (request, credential, scheme) -> token info dict; raises an ApiError for a bad credential
Verifier = t.Callable[[ConnexionRequest, str, dict[str, t.Any]], dict[str, t.Any]]


def _api_key_reader(scheme: dict[str, t.Any]) -> t.Callable[[ConnexionRequest], str | None]:
    name = scheme["name"]
    if scheme["in"] == "header":
        key = header_key(name)
        return lambda request: first_header(request.scope["headers"], key)
    if scheme["in"] == "query":
        return lambda request: request.query_params.get(name)
    return lambda request: request.cookies.get(name)


def _bearer_reader(request: ConnexionRequest) -> str | None:
    header = first_header(request.scope["headers"], b"authorization")
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def handler_class(kind: str, verify: Verifier) -> type[AbstractSecurityHandler]:
    """A security handler class for ``kind`` ("apiKey" or "bearer") that calls ``verify``."""

    class BoundHandler(AbstractSecurityHandler):
        def get_fn(self, security_scheme: dict[str, t.Any], required_scopes: t.Any) -> t.Callable:
            read = _api_key_reader(security_scheme) if kind == "apiKey" else _bearer_reader

            def check(request: ConnexionRequest) -> t.Any:
                credential = read(request)
                if credential is None:
                    return NO_VALUE
                return verify(request, credential, security_scheme)

            return check

    BoundHandler.__name__ = f"{kind.capitalize()}Handler"
    return BoundHandler


def security_map(api_key: Verifier | None = None, bearer: Verifier | None = None) -> dict[str, type]:
    """A Connexion security map with our handlers for the schemes a contract uses."""
    result: dict[str, type] = {}
    if api_key is not None:
        result["apiKey"] = handler_class("apiKey", api_key)
    if bearer is not None:
        result["bearer"] = handler_class("bearer", bearer)
    return result
