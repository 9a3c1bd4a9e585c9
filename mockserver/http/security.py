"""Security handlers for Connexion's security map, bound to one running mock.

Connexion instantiates a handler class per security scheme; these classes close over a verification
function that looks the credential up in the building. A missing credential answers Connexion's NO_VALUE (so
Connexion raises its 401, which the vendor renders); a wrong one raises the vendor's own error.

Given the store's ``revision``, an operation keeps the token info each accepted credential got, and answers it
again while the revision is the same: a verdict reads only stored credentials (no clock), so until a write it
cannot change. Refusals are worked out anew each time. tests/mockserver/test_read_cache.py holds both.
"""

from __future__ import annotations

import typing as t
from collections.abc import Hashable

from connexion.lifecycle import ConnexionRequest
from connexion.security import NO_VALUE, AbstractSecurityHandler

from .headers import first_header, header_key

#: (request, credential, scheme) -> token info dict; raises an ApiError for a bad credential
Verifier = t.Callable[[ConnexionRequest, str, dict[str, t.Any]], dict[str, t.Any]]
#: the store's revision (None: other processes write it unseen, and nothing may be kept)
Revision = t.Callable[[], Hashable | None]

#: accepted credentials kept per operation and scheme; past this the memory starts over
_KEPT_VERDICTS = 1024


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


def handler_class(kind: str, verify: Verifier, revision: Revision | None = None) -> type[AbstractSecurityHandler]:
    """A security handler class for ``kind`` ("apiKey" or "bearer") that calls ``verify`` (see the module
    docstring for ``revision``)."""

    class BoundHandler(AbstractSecurityHandler):
        def get_fn(self, security_scheme: dict[str, t.Any], required_scopes: t.Any) -> t.Callable:
            read = _api_key_reader(security_scheme) if kind == "apiKey" else _bearer_reader
            # One per operation (Connexion asks each operation's requirements for a function of their own): a
            # verdict may depend on the operation, as Magicline's scopes do.
            kept: dict[str, tuple[Hashable, dict[str, t.Any]]] = {}

            def check(request: ConnexionRequest) -> t.Any:
                credential = read(request)
                if credential is None:
                    return NO_VALUE
                before = revision() if revision is not None else None
                if before is not None:
                    verdict = kept.get(credential)
                    if verdict is not None and verdict[0] == before:
                        return dict(verdict[1])  # a copy: the request's context holds it
                info = verify(request, credential, security_scheme)
                if before is not None and revision() == before:  # type: ignore[misc]
                    if len(kept) >= _KEPT_VERDICTS:
                        kept.clear()
                    kept[credential] = (before, dict(info))
                return info

            return check

    BoundHandler.__name__ = f"{kind.capitalize()}Handler"
    return BoundHandler


def security_map(
    api_key: Verifier | None = None, bearer: Verifier | None = None, *, revision: Revision | None = None
) -> dict[str, type]:
    """A Connexion security map with our handlers for the schemes a contract uses."""
    result: dict[str, type] = {}
    if api_key is not None:
        result["apiKey"] = handler_class("apiKey", api_key, revision)
    if bearer is not None:
        result["bearer"] = handler_class("bearer", bearer, revision)
    return result
