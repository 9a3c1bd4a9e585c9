"""A direct route from a request to its compiled operation, past Connexion's routing layers.

Connexion reaches an operation through six ASGI layers (server-error and exception middlewares, the Swagger UI
router, a Starlette router with one mount per API, the routing middleware and the routed middleware), each wrapping
`send` again. `FastRouter` matches the same routes in the same order with the same converters (Connexion's, which
accept what Starlette's routing accepts) and calls the `FastOperation` the routed middleware would have called,
with the same scope additions; exceptions go to the same error handler the exception middleware calls. Anything
it does not match for certain (unknown paths, wrong methods, HEAD, CORS requests, the docs) takes the full chain.
tests/mockserver/test_pipeline.py holds both paths to the same answers.
"""

from __future__ import annotations

import re
import typing as t

import starlette.convertors
from connexion.lifecycle import ConnexionRequest
from starlette.responses import Response
from starlette.types import Receive, Scope

from .connexion_internals import ROUTING_CONTEXT, FloatConverter, IntegerConverter, starlettify_path
from .errors import ErrorHandler
from .starlette_internals import compile_path, route_path


class Respondent(t.Protocol):
    """A compiled operation: answers a routed request with a response it has not sent."""

    async def respond(self, scope: Scope, receive: Receive) -> Response: ...


class _Route(t.NamedTuple):
    method: str
    regex: re.Pattern[str]
    convertors: dict[str, starlette.convertors.Convertor]
    base_path: str
    operation_id: str
    operation: Respondent


class FastRouter:
    def __init__(self, error_handler: ErrorHandler) -> None:
        self.error_handler = error_handler
        #: method -> base path -> that API's routes for the method, in the order Connexion adds them
        self._routes: dict[str, dict[str, list[_Route]]] = {}
        # The converters Connexion's routing middleware registers (a leading minus for integers, for instance).
        starlette.convertors.register_url_convertor("float", FloatConverter())
        starlette.convertors.register_url_convertor("int", IntegerConverter())

    def add(
        self, base_path: str, method: str, path: str, types: dict[str, str], operation_id: str, operation: Respondent
    ) -> None:
        """Register one operation, in the order Connexion adds its routes (the first full match wins there too)."""
        regex, _, convertors = compile_path(starlettify_path(path, types))
        method = method.upper()
        # Grouped by method: Starlette passes over a route of another method to a later one of the same path, so
        # the first route of the request's method whose path matches is the one it picks.
        self._routes.setdefault(method, {}).setdefault(base_path, []).append(
            _Route(method, regex, convertors, base_path, operation_id, operation)
        )

    def routes(self) -> t.Iterator[_Route]:
        """Every registered route."""
        for by_api in self._routes.values():
            for routes in by_api.values():
                yield from routes

    def match(self, scope: Scope) -> tuple[_Route, dict[str, t.Any]] | None:
        """The route and converted path parameters Connexion would pick, or None when the full chain decides."""
        method = scope["method"]
        if method in ("HEAD", "OPTIONS"):
            return None
        by_api = self._routes.get(method)
        if by_api is None:
            return None
        path = route_path(scope)
        if not path.isprintable():
            return None  # control characters meet regex corner cases ($ before a newline): the full chain decides
        for base_path, routes in by_api.items():
            if not path.startswith(base_path + "/"):
                continue
            rest = path[len(base_path) :]
            for route in routes:
                found = route.regex.match(rest)
                if found is None:
                    continue
                params = {name: route.convertors[name].convert(value) for name, value in found.groupdict().items()}
                return route, params
        return None

    async def respond(self, matched: tuple[_Route, dict[str, t.Any]], scope: Scope, receive: Receive) -> Response:
        """The answer of the matched operation, or of the error handler for what it raised; not yet sent."""
        route, params = matched
        # The routing middleware would hand a copy of the scope on; nothing out here reads path_params, and the
        # error handler must see the routing context in the caller's extensions anyway.
        scope["path_params"] = params
        scope["extensions"][ROUTING_CONTEXT] = {"api_base_path": route.base_path, "operation_id": route.operation_id}
        try:
            return await route.operation.respond(scope, receive)
        except Exception as exc:
            answer = await self.error_handler(ConnexionRequest(scope, receive), exc)
            return Response(
                content=answer.body,
                status_code=answer.status_code,
                media_type=answer.mimetype,
                headers=answer.headers,
            )
