"""The fast router picks the route Starlette's router would: the first one, in Connexion's order, whose path
matches and whose method is the request's; a path that matches only under another method is left to the full
chain (its 405), and so are HEAD and OPTIONS."""

from __future__ import annotations

import typing as t

from starlette.responses import Response
from starlette.types import Receive, Scope

from mockserver.http.fast_routing import FastRouter


class Named:
    def __init__(self, name: str) -> None:
        self.name = name

    async def respond(self, scope: Scope, receive: Receive) -> Response:
        return Response(self.name)


def _scope(method: str, path: str) -> Scope:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def _router() -> FastRouter:
    async def unused(request: t.Any, exc: Exception) -> t.Any:
        raise AssertionError("not called by match")

    router = FastRouter(unused)  # type: ignore[arg-type]
    # As a contract lists them: a templated GET before a literal POST of a path it also matches.
    router.add("/vms/api", "get", "/codes/{code}", {"code": "string"}, "getCode", Named("getCode"))
    router.add("/vms/api", "post", "/codes/new", {}, "createCode", Named("createCode"))
    router.add("/vms/api", "get", "/codes/new", {}, "neverReached", Named("neverReached"))
    router.add("/vms/api", "delete", "/codes/{code}", {"code": "integer"}, "deleteCode", Named("deleteCode"))
    router.add("/seam", "head", "/codes/{code}", {"code": "string"}, "headCode", Named("headCode"))
    return router


def _picked(router: FastRouter, method: str, path: str) -> str | None:
    matched = router.match(_scope(method, path))
    return None if matched is None else matched[0].operation_id


def test_the_first_route_of_the_request_method_wins() -> None:
    router = _router()
    assert _picked(router, "GET", "/vms/api/codes/new") == "getCode"  # registered first, its template matches
    assert _picked(router, "POST", "/vms/api/codes/new") == "createCode"  # the GET before it does not take a POST
    matched = router.match(_scope("DELETE", "/vms/api/codes/-12"))
    assert matched is not None and matched[1] == {"code": -12}  # Connexion's integer converter, minus included


def test_what_no_route_of_the_method_matches_is_left_to_the_full_chain() -> None:
    router = _router()
    assert _picked(router, "PUT", "/vms/api/codes/new") is None  # the path exists: the full chain answers 405
    assert _picked(router, "DELETE", "/vms/api/codes/abc") is None  # not an integer
    assert _picked(router, "POST", "/vms/api/codes/other") is None
    assert _picked(router, "GET", "/vms/apicodes/new") is None  # not under the base path
    assert _picked(router, "HEAD", "/seam/codes/1") is None  # HEAD and OPTIONS always take the full chain
    assert _picked(router, "OPTIONS", "/vms/api/codes/new") is None
