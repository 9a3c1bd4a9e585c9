"""Requests and responses held to a contract with openapi-core, for judging an exchange the suite did not shape
itself: what Schemathesis generated (is a refusal or an acceptance the vendor's documented rule or the mock's
choice?) and, in the proxy, what a user's own application sends and gets.

Each problem says whether the rule it breaks is one of the mock's choices (`x-mock-choice` on the keyword, or on
the parameter for a missing one): a vendor may differ there, so the suite makes it a note, not a failure.
Security is left to the checks that test it (a run sends credentials; the proxy forwards the app's).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from jsonschema.exceptions import ValidationError as SchemaError
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from mockserver.contracts import Contract, Operation, marks_of

__all__ = ["ContractValidator", "Problem", "is_marked", "validator_for"]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass(frozen=True)
class Problem:
    """One way an exchange breaks the contract."""

    #: "query", "header", "path", "cookie", "body", "status", "content-type" or "route"
    location: str
    #: the parameter's or field's name, when one is to blame
    name: str | None
    message: str
    #: the broken rule is one of the mock's choices (a vendor may differ there)
    marked: bool = False
    #: the keyword broken (`maxLength`, `required`, ...), when one is
    rule: str | None = None
    #: the broken rule binds clients by the documents; only a server's refusal is the mock's choice
    client_rule: bool = False

    @property
    def brief(self) -> str:
        """Where and which rule, without the value or item positions (they make notes that never repeat)."""
        name = ".".join("*" if part.isdigit() else part for part in self.name.split(".")) if self.name else None
        where = f"{self.location} {name}" if name else self.location
        return f"{where} ({self.rule})" if self.rule else where


def is_marked(error: SchemaError) -> bool:
    """Whether a schema error breaks a rule marked as the mock's choice (for oneOf/anyOf: some alternative fails
    only by such rules)."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    if any(error.validator in (mark.get("keywords") or ()) for mark in marks_of(schema)):
        return True
    if error.validator in ("oneOf", "anyOf") and error.context:
        branches: dict[Any, list[SchemaError]] = {}
        for sub in error.context:
            branches.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
        return any(all(is_marked(sub) for sub in subs) for subs in branches.values())
    return False


@dataclass
class _Request:
    """What openapi-core reads of a request."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes | None
    content_type: str
    host_url: str = "http://conformance.invalid"
    parameters: RequestParameters = field(init=False)

    def __post_init__(self) -> None:
        self.method = self.method.lower()
        self.parameters = RequestParameters(query=ImmutableMultiDict(self.query), header=Headers(dict(self.headers)))


@dataclass
class _Response:
    status_code: int
    headers: Mapping[str, str]
    data: bytes
    content_type: str


class ContractValidator:
    """openapi-core's request and response validation against one view of a contract."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        spec = copy.deepcopy(contract.raw)
        spec["servers"] = [{"url": "/"}]  # the path handed in is relative to the API's base URL
        spec.pop("security", None)
        for item in spec.get("paths", {}).values():
            for method in _METHODS:
                if isinstance(item.get(method), dict):
                    item[method].pop("security", None)
        self._api = OpenAPI.from_dict(spec)

    def request_problems(
        self,
        method: str,
        path: str,
        *,
        query: str | Iterable[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> list[Problem]:
        """What is wrong with a request (``path`` relative to the API's base URL)."""
        headers = {name.lower(): value for name, value in (headers or {}).items()}
        pairs = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else list(query)
        request = _Request(method, path, pairs, headers, body or None, headers.get("content-type", ""))
        operation = self.contract.find(method, path)
        problems = []
        for error in self._api.iter_request_errors(request):
            problems += _problems(error, operation)
        return problems

    def response_problems(
        self,
        method: str,
        path: str,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> list[Problem]:
        """What is wrong with a response to a request of ``method`` on ``path``."""
        headers = {name.lower(): value for name, value in (headers or {}).items()}
        request = _Request(method, path, [], {}, None, "")
        response = _Response(status, headers, body, headers.get("content-type", "application/json"))
        problems = []
        for error in self._api.iter_response_errors(request, response):
            problems += _problems(error, None)
        return problems


def _problems(error: Exception, operation: Operation | None) -> list[Problem]:
    kind = type(error).__name__
    cause = error.__cause__
    schema_errors: tuple[SchemaError, ...] = tuple(getattr(cause, "schema_errors", ()) or ())
    name = getattr(error, "name", None) or getattr(cause, "name", None)
    location = str(getattr(error, "location", "") or getattr(cause, "location", "") or "")
    if name is not None and location in ("query", "header", "path", "cookie"):
        parameter = operation.parameter(name, location) if operation is not None else {}
        return _parameter_problems(error, cause, schema_errors, parameter)
    if schema_errors:
        return [
            Problem(
                "body",
                ".".join(str(part) for part in e.absolute_path) or None,
                e.message,
                is_marked(e),
                str(e.validator),
            )
            for e in schema_errors
        ]
    if kind in ("ResponseNotFound",):
        return [Problem("status", None, str(error))]
    if kind in ("PathNotFound", "OperationNotFound", "ServerNotFound"):
        return [Problem("route", None, str(error))]
    if "MediaType" in kind or "ContentType" in kind:
        return [Problem("content-type", None, str(error))]
    return [Problem("body", None, str(error))]


def _parameter_problems(
    error: Exception, cause: Any, schema_errors: tuple[SchemaError, ...], parameter: dict[str, Any]
) -> list[Problem]:
    name, location = str(parameter.get("name", getattr(error, "name", ""))), str(parameter.get("in", ""))
    marks = marks_of(parameter) + marks_of(parameter.get("schema", {}))
    whole = any(not mark.get("keywords") for mark in marks)
    keywords = {keyword for mark in marks for keyword in mark.get("keywords") or ()}
    enforced = {keyword for mark in marks if mark.get("enforcement") for keyword in mark.get("keywords") or ()}

    def problem(message: str, rule: str | None, marked: bool) -> Problem:
        return Problem(location, name, message, whole or marked, rule, rule in enforced)

    if type(error).__name__ == "MissingRequiredParameter":
        return [problem(f"the required {location} parameter {name!r} is missing", "required", "required" in keywords)]
    if schema_errors:
        return [problem(f"{name}: {e.message}", str(e.validator), is_marked(e)) for e in schema_errors]
    if type(cause).__name__ == "CastError":
        return [problem(f"{name}: not of type {cause.type}", "type", "type" in keywords)]
    if type(cause).__name__ == "EmptyQueryParameterValue":
        return [problem(f"{name}: empty", "empty", bool(keywords & {"pattern", "minLength", "type"}))]
    return [Problem(location, name, str(error), whole)]


@functools.cache
def _validator(api: str, strict: bool) -> ContractValidator:
    from mockserver.contracts import load_contract

    return ContractValidator(load_contract(api).view(strict=strict))


def validator_for(contract: Contract) -> ContractValidator:
    """The (cached) validator of a contract view."""
    return _validator(contract.api, contract.strict)


def json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        return None
