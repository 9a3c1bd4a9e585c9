"""The compiled query resolver answers what Connexion's request answers, on every operation it serves."""

from __future__ import annotations

import pytest
from connexion.lifecycle import ConnexionRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.testclient import TestClient

from mockserver.app import create_app
from mockserver.http.query import QueryResolver, query_lists


def _operations() -> list[tuple[str, object]]:
    app = create_app(seed=1)
    # Connexion builds its middleware (and so our operations) on the first request.
    TestClient(app).get("/_mock/nowhere")
    found = []
    for route in app.router.routes():
        found.append((f"{route.method} {route.base_path}/{route.operation_id.rsplit('.', 1)[-1]}", route.operation))
    return found


OPERATIONS = _operations()
RESOLVED = [(name, op) for name, op in OPERATIONS if op.query is not None and op.query_defined]


def test_every_operation_with_scalar_query_parameters_is_resolved_without_connexion() -> None:
    # The VMS and Magicline lists and the Seam lists: the fast resolver must serve them, or it serves nothing.
    names = {name.rsplit("/", 1)[-1] for name, _ in RESOLVED}
    assert {"listCodes", "listAccessCodes", "getCustomers"} <= names, names


def _query_strings(names: list[str]) -> st.SearchStrategy[bytes]:
    name = st.sampled_from(names) | st.text(alphabet="ab[]%+=é ", max_size=4)
    piece = st.sampled_from([*"0123456789-+.% =aéZ,&x", "%2", "%41", "%zz", "%C3%A9", "true", "null"])
    value = st.lists(piece, max_size=6).map("".join)
    pair = st.tuples(name, st.sampled_from(["=", ""]), value).map(lambda p: p[0] + (p[1] + p[2] if p[1] else ""))
    joined = st.lists(pair, max_size=5).map("&".join).map(lambda s: s.encode("utf-8"))
    raw = st.binary(max_size=24)
    return joined | raw


@pytest.mark.parametrize(("name", "operation"), RESOLVED, ids=[n for n, _ in RESOLVED])
def test_resolver_agrees_with_connexion(name: str, operation: object) -> None:
    names = [p["name"] for p in operation.operation.parameters if p["in"] in ("query", "path")]  # type: ignore[attr-defined]

    @given(query=_query_strings(names))
    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(query: bytes) -> None:
        scope = {"type": "http", "method": "GET", "path": "/", "query_string": query, "headers": []}
        expected = ConnexionRequest(scope, uri_parser=operation.uri_parser).query_params  # type: ignore[attr-defined]
        assert operation.query.resolve(query) == expected  # type: ignore[attr-defined]
        # Asked again (answered from what the resolver kept, if it kept it): the same, and a dict of its own.
        again = operation.query.resolve(query)  # type: ignore[attr-defined]
        assert again == expected
        again["planted"] = 1
        assert operation.query.resolve(query) == expected  # type: ignore[attr-defined]
        starlette = Request(scope).query_params
        assert query_lists(query) == {k: starlette.getlist(k) for k in starlette}

    check()


def test_array_and_deep_object_parameters_are_left_to_connexion() -> None:
    class Parser:
        def __init__(self, definitions: dict) -> None:
            self.param_defns = definitions
            self.param_schemas = {k: v.get("schema", {}) for k, v in definitions.items()}

    scalar = {"in": "query", "name": "page", "schema": {"type": "integer"}}
    array = {"in": "query", "name": "ids", "schema": {"type": "array", "items": {"type": "integer"}}}
    deep = {"in": "query", "name": "filter", "style": "deepObject", "schema": {"type": "string"}}
    untyped = {"in": "path", "name": "id", "schema": {}}
    assert QueryResolver.for_operation(Parser({"page": scalar})) is not None  # type: ignore[arg-type]
    for other in (array, deep, untyped):
        assert QueryResolver.for_operation(Parser({"page": scalar, other["name"]: other})) is None  # type: ignore[arg-type]
