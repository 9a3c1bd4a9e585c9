"""Every use of Connexion beyond its documented API, in one place, checked when the mock starts.

The compiled pipeline takes the place of Connexion's security, validation and context middlewares, so it needs a
few of their pieces that Connexion does not promise to keep: the routed-middleware base classes, the functions its
security factory builds per requirement, the URI parser an operation was given, its path converters, and the
hooks its body validators call (`_parse`, `_validate`, `_insert_messages`), and the hook that validates a
contract when an API is added (see `remember_valid_contracts`). Everything else of the mock uses
Connexion's public API (the app, `add_api`, resolvers, error handlers, the validator map, Swagger UI).

At import this module checks the installed release against the one the tests ran on (`supported`) and that each
piece is there; otherwise it raises `UnsupportedFramework` ("unsupported connexion 3.1: ..."), and
`mockserver run` exits 2 with that line instead of answering requests with 500s.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import typing as t

from starlette.types import Receive, Scope

from .supported import release, require, unsupported

#: the Connexion releases the tests ran on (pyproject.toml declares the same range)
LOWEST, BELOW = (3, 3), (3, 4)

require("connexion", release("connexion"), LOWEST, BELOW)

try:
    from connexion.frameworks import starlette as _frameworks
    from connexion.lifecycle import ConnexionRequest
    from connexion.middleware import abstract as _abstract
    from connexion.middleware.security import SecurityOperation
    from connexion.operations import AbstractOperation
    from connexion.security import SecurityHandlerFactory
    from connexion.spec import OpenAPISpecification
    from connexion.validators import FormDataValidator, JSONRequestBodyValidator, JSONResponseBodyValidator
    from connexion.validators.abstract import AbstractRequestBodyValidator, AbstractResponseBodyValidator
except ImportError as exc:  # pragma: no cover - only on a release that moved them
    raise unsupported("connexion", str(exc)) from exc


require(
    "connexion",
    release("connexion"),
    LOWEST,
    BELOW,
    [
        (_abstract, "RoutedAPI"),
        (_abstract, "RoutedMiddleware"),
        (_abstract, "ROUTING_CONTEXT"),
        (_frameworks, "FloatConverter"),
        (_frameworks, "IntegerConverter"),
        (_frameworks, "starlettify_path"),
        (SecurityHandlerFactory, "verify_security"),
        (SecurityOperation, "_get_verification_fn"),
        (AbstractRequestBodyValidator, "_parse"),
        (AbstractRequestBodyValidator, "_validate"),
        (AbstractRequestBodyValidator, "_insert_messages"),
        (AbstractRequestBodyValidator, "wrap_receive"),
        (AbstractResponseBodyValidator, "_validate"),
        (OpenAPISpecification, "_validate_spec"),
    ],
)
if "scope" not in inspect.signature(AbstractRequestBodyValidator.wrap_receive).parameters:
    raise unsupported("connexion", "its body validators' wrap_receive takes no scope")


def remember_valid_contracts() -> None:
    """Validate each contract against the OpenAPI schema once per process rather than on every `add_api`.

    Connexion checks a contract every time an API is added. That was three quarters of building an app (about
    90 ms of CPU per contract), and the tests build about 190 apps from the same four contracts. A contract is
    known by a digest of its canonical JSON, so an edited one is validated again.
    """
    validate = OpenAPISpecification._validate_spec.__func__
    if getattr(validate, "remembers", False):
        return
    valid: set[str] = set()

    def validate_once(cls: type, spec: dict[str, t.Any]) -> None:
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
        if digest not in valid:
            validate(cls, spec)
            valid.add(digest)

    validate_once.remembers = True  # type: ignore[attr-defined]
    OpenAPISpecification._validate_spec = classmethod(validate_once)


RoutedAPI = _abstract.RoutedAPI
RoutedMiddleware = _abstract.RoutedMiddleware
#: where the routing middleware puts the routed operation in the scope's extensions
ROUTING_CONTEXT: str = _abstract.ROUTING_CONTEXT
#: where Connexion's request keeps what security found (`user`, `token_info`) in the scope's extensions; Connexion
#: names it without a constant (lifecycle.py, middleware/context.py)
REQUEST_CONTEXT = "connexion_context"
FloatConverter = _frameworks.FloatConverter
IntegerConverter = _frameworks.IntegerConverter
starlettify_path = _frameworks.starlettify_path


def uri_parser(operation: AbstractOperation) -> t.Any:
    """A URI parser for ``operation``, of the class the app was given (Connexion keeps it on the operation)."""
    return operation._uri_parser_class(operation.parameters, operation.body_definition())


def security_functions(operation: AbstractOperation, security_map: dict | None) -> list[t.Callable[..., t.Any]]:
    """The functions Connexion's security middleware would try for ``operation``, one per requirement, in its
    order (empty when the operation has no security)."""
    if not operation.security:
        return []
    factory = _CapturingFactory(security_map)
    SecurityOperation(
        None,
        security_handler_factory=factory,
        security=operation.security,
        security_schemes=operation.security_schemes,
    )
    return factory.auth_funcs


class _CapturingFactory(SecurityHandlerFactory):
    """Connexion's factory, keeping the per-requirement functions it builds."""

    def __init__(self, security_handlers: dict | None = None) -> None:
        super().__init__(security_handlers)
        self.auth_funcs: list[t.Callable[..., t.Any]] = []

    def verify_security(self, auth_funcs: list) -> t.Callable:
        self.auth_funcs = list(auth_funcs)
        return super().verify_security(auth_funcs)


class Request(ConnexionRequest):
    """Connexion's request, holding the scope itself: security, validation and handlers read it several times a
    request, and each read would otherwise pass through `ConnexionRequest.__getattr__` to Starlette's request."""

    def __init__(self, scope: Scope, receive: Receive, *, uri_parser: t.Any) -> None:
        super().__init__(scope, receive, uri_parser=uri_parser)
        self.scope = scope

    def again(self, scope: Scope, receive: Receive) -> Request:
        """The same request reading its body from ``receive``, with the path parameters already resolved."""
        resolved = self.path_params
        request = Request(scope, receive, uri_parser=self.uri_parser)
        request._path_params = resolved
        return request


class _BodyHooks:
    """Connexion's request body validator hooks under names of our own: `parse_body` (bytes to a body),
    `validate_body` (raise for a bad body), `replay` (a receive that hands the read messages on again)."""

    @property
    def body_schema(self) -> dict[str, t.Any]:
        return self._schema  # type: ignore[attr-defined]

    @property
    def body_nullable(self) -> bool:
        return self._nullable  # type: ignore[attr-defined]

    async def parse_body(self, stream: t.AsyncGenerator[bytes, None], scope: Scope) -> t.Any:
        return await super()._parse(stream, scope)  # type: ignore[misc]

    def validate_body(self, body: t.Any) -> t.Any:
        return super()._validate(body)  # type: ignore[misc]

    async def _parse(self, stream: t.AsyncGenerator[bytes, None], scope: Scope) -> t.Any:
        return await self.parse_body(stream, scope)

    def _validate(self, body: t.Any) -> t.Any:
        return self.validate_body(body)

    @staticmethod
    def replay(receive: Receive, messages: list[t.MutableMapping[str, t.Any]]) -> Receive:
        return AbstractRequestBodyValidator._insert_messages(receive, messages=messages)


class JSONBodyValidator(_BodyHooks, JSONRequestBodyValidator):
    """Connexion's JSON request body validator, hooks named as in `_BodyHooks`."""


class FormBodyValidator(_BodyHooks, FormDataValidator):
    """Connexion's form request body validator, hooks named as in `_BodyHooks`."""


class JSONResponseValidator(JSONResponseBodyValidator):
    """Connexion's JSON response body validator: override `validate_body`; `scope` is the request's."""

    @property
    def scope(self) -> Scope:
        return self._scope

    def validate_body(self, body: t.Any) -> t.Any:
        return super()._validate(body)

    def _validate(self, body: t.Any) -> t.Any:
        return self.validate_body(body)
