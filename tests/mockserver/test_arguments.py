"""A handler's arguments are built by Connexion's rules (mockserver.http.arguments)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mockserver.http.arguments import Arguments, argument_name, cast, query_defaults, signature


@pytest.mark.parametrize(
    ("name", "argument"),
    [
        ("intercom_id", "intercom_id"),
        ("filter[status]", "filter_status"),
        ("ids[]", "ids"),
        ("X-Client", "XClient"),
        ("1st", "st"),
        ("", ""),
    ],
)
def test_names_become_python_arguments(name: str, argument: str) -> None:
    assert argument_name(name) == argument


def test_values_take_their_declared_type() -> None:
    assert cast("42", {"schema": {"type": "integer"}}) == 42
    assert cast("1.5", {"schema": {"type": "number"}}) == 1.5
    assert cast("true", {"schema": {"type": "boolean"}}) is True
    assert cast(["1", "2"], {"schema": {"type": "array", "items": {"type": "integer"}}}) == [1, 2]
    assert cast("null", {"schema": {"type": "integer", "nullable": True}}) is None
    with pytest.raises(ValueError):
        cast("null", {"schema": {"type": "integer"}})


def test_query_defaults_come_from_the_parameter_or_its_schema() -> None:
    definitions = {
        "page": {"schema": {"type": "integer", "default": 1}},
        "order": {"default": "asc", "schema": {"type": "string"}},
        "filter": {"schema": {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}}},
        "untyped": {"schema": {"default": 3}},
        "none": {"schema": {"type": "string"}},
    }
    assert query_defaults(definitions) == {"page": 1, "order": "asc", "filter": {"a": "x"}}


def _operation(body: dict[str, Any] | None = None, parameters: list | None = None, method: str = "post") -> Any:
    schemas = body or {}
    return SimpleNamespace(
        parameters=parameters or [],
        method=method,
        is_request_body_defined=bool(body),
        body_name=lambda media_type: "body",
        body_schema=lambda media_type=None: schemas.get(media_type, next(iter(schemas.values()), {})),
    )


def handler(intercom: int, per_page: int = 25, body: Any = None) -> None: ...


def test_path_query_and_json_body() -> None:
    operation = _operation(
        {"application/json": {"type": "object", "default": {"title": "x"}}},
        [
            {"name": "intercom", "in": "path", "schema": {"type": "integer"}},
            {"name": "per_page", "in": "query", "schema": {"type": "integer", "default": 25}},
            {"name": "unknown", "in": "query", "schema": {"type": "integer"}},
        ],
    )
    arguments = Arguments(operation, *signature(handler))
    built = arguments.build({"intercom": "180"}, {"per_page": "5", "other": ["1"]}, {"a": 1}, "application/json")
    assert built == {"intercom": 180, "per_page": 5, "body": {"a": 1}}
    # no body: the schema's default; query defaults apply
    assert arguments.build({"intercom": "1"}, {}, None, "application/json") == {
        "intercom": 1,
        "per_page": 25,
        "body": {"title": "x"},
    }


def test_form_fields_take_their_property_types() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}}}
    operation = _operation({"application/x-www-form-urlencoded": schema})

    def login(body: dict) -> None: ...

    arguments = Arguments(operation, *signature(login))
    built = arguments.build({}, {}, {"n": "7", "s": "a", "extra": "kept"}, "application/x-www-form-urlencoded")
    assert built == {"body": {"n": 7, "s": "a", "extra": "kept"}}
    closed = _operation({"application/x-www-form-urlencoded": {**schema, "additionalProperties": False}})
    built = Arguments(closed, *signature(login)).build(
        {}, {}, {"n": "7", "x": "1"}, "application/x-www-form-urlencoded"
    )
    assert built == {"body": {"n": 7}}


def test_a_handler_without_the_argument_gets_none_and_trace_gets_no_body() -> None:
    def bare() -> None: ...

    operation = _operation({"application/json": {"type": "object"}})
    assert Arguments(operation, *signature(bare)).build({}, {}, {"a": 1}, "application/json") == {}
    trace = _operation({"application/json": {"type": "object"}}, method="trace")
    assert Arguments(trace, *signature(handler)).build({}, {}, {"a": 1}, "application/json") == {}
