"""Whether a generic check's failure is the vendor breaking its documents, or only the vendor differing from one
of the mock's choices (a note in the default view).

Schemathesis generates from the contract as written (the mock's limits included, so what it sends is what the
mock would take or refuse), and its generic checks judge by it. In the vendor view a failure is then only a
difference from a mock choice when:

- a refusal of a request the contract accepts is attributable to a marked rule: the request breaks a marked rule
  of the contract as written; or the vendor's error body names only fields with marks (VMS's `errors`,
  Magicline's `reference`); or, when the body names nothing, the request holds a value other than the contract's
  own example at a marked field;
- an acceptance of a request the contract refuses (or of one lacking a required header) breaks marked rules only;
- a response body breaks marked rules only;
- an API the documents leave silent about methods it lacks answers one otherwise than 405.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from mockserver.contracts import Contract, load_contract, marks_of, resolve

from .openapi_check import validator_for

if TYPE_CHECKING:
    from .session import Session

__all__ = ["difference"]

#: generic checks that hold a vendor to what a server should answer a method the API lacks (RFC 9110)
METHOD_CHECKS = frozenset({"unsupported_method", "allow_header_conformance"})


def difference(
    session: Session,
    check: str,
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    status: int | None,
    response: bytes,
) -> str | None:
    """A note's words when this generic failure only differs from a mock choice; None when it stands."""
    if session.strict:
        return None
    written = load_contract(session.api)
    path = _relative(url, session.target.base_url)
    query = urlsplit(url).query
    if check in METHOD_CHECKS and session.contract.extension("x-unsupported-method") is None:
        if check == "allow_header_conformance":
            return "its Allow header names other methods than the contract (the mock names exactly those)"
        return f"a method the API lacks answered {status} (the mock answers 405 with Allow)"
    if check in ("negative_data_rejection", "missing_required_header"):
        problems = validator_for(written).request_problems(method, path, query=query, headers=headers, body=body)
        if problems and all(problem.marked for problem in problems):
            return "accepted what only the mock's own rules refuse: " + _briefly(problems)
        if problems and all(_coercible(problem, body) for problem in problems):
            return "reads a number or true/false sent for a text field as text: " + _briefly(problems)
        return None
    if check == "positive_data_acceptance":
        return _refusal(session, written, method, path, query, headers, body, status, response)
    if check == "response_schema_conformance" and status is not None:
        problems = validator_for(written).response_problems(
            method, path, status, headers={"content-type": "application/json"}, body=response
        )
        if problems and all(problem.marked for problem in problems):
            return "answers otherwise than the mock chose: " + _briefly(problems)
    return None


def _refusal(
    session: Session,
    written: Contract,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes | None,
    status: int | None,
    response: bytes,
) -> str | None:
    operation = written.find(method, path)
    if operation is None or status is None:
        return None
    problems = validator_for(written).request_problems(method, path, query=query, headers=headers, body=body)
    if problems and all(problem.marked for problem in problems):
        return f"refused ({status}) what only the mock's own rules refuse: {_briefly(problems)}"
    spots = _marked_spots(written.api, operation.operation_id)
    named = session.profile.refused_fields(status, _json(response))
    if named is not None:
        if named and named <= set(spots):
            return f"refused ({status}) a value the documents put no rule on: {', '.join(sorted(named))}"
        return None
    sent = _sent_values(path, query, headers, body)
    unusual = sorted(name for name, examples in spots.items() if name in sent and sent[name] not in examples)
    if unusual:
        return f"refused ({status}) a request with values the documents put no rule on: {', '.join(unusual)}"
    return None


def _coercible(problem: Any, body: bytes | None) -> bool:
    """A JSON number or boolean where the contract types a body field as a string: Spring's and Laravel's parsers
    read it as its text, and the documents do not say it is refused."""
    if problem.location != "body" or problem.rule != "type" or not problem.name:
        return False
    value: Any = _json(body or b"")
    for part in problem.name.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False
    return isinstance(value, (bool, int, float)) and "string" in problem.message


def _briefly(problems: list[Any]) -> str:
    return ", ".join(sorted({problem.brief for problem in problems}))


def _relative(url: str, base_url: str) -> str:
    path = urlsplit(url).path
    base = urlsplit(base_url).path.rstrip("/")
    return path[len(base) :] if base and path.startswith(base) else path


def _json(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        return None


def _sent_values(path: str, query: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
    """The request's values by lower-case name: query, headers and the JSON body's top-level fields."""
    values = {name.lower(): value for name, value in parse_qsl(query, keep_blank_values=True)}
    values.update({name.lower(): str(value) for name, value in headers.items()})
    data = _json(body or b"")
    if isinstance(data, dict):
        values.update(
            {
                str(name).lower(): json.dumps(value) if not isinstance(value, str) else value
                for name, value in data.items()
            }
        )
    return values


@functools.cache
def _marked_spots(api: str, operation_id: str) -> dict[str, frozenset[str]]:
    """Parameters and top-level body fields of an operation that carry a mark, with their example values."""
    operation = load_contract(api).operation(operation_id)
    spots: dict[str, frozenset[str]] = {}
    for parameter in operation.parameters():
        schema = resolve(parameter.get("schema", {}), operation.components)
        if marks_of(parameter) or _any_mark(schema, operation.components):
            spots[str(parameter.get("name", "")).lower()] = _examples(parameter, schema)
    for media_type, media in operation.raw.get("requestBody", {}).get("content", {}).items():
        schema = operation.body_schema(media_type)
        example = media.get("example") if isinstance(media.get("example"), dict) else {}
        every = any("required" in (m.get("keywords") or ()) for m in marks_of(schema))
        for name, prop in schema.get("properties", {}).items():
            prop = resolve(prop, operation.components)
            if every or _any_mark(prop, operation.components):
                found = _examples(prop, prop)
                if name in example:
                    found |= {example[name] if isinstance(example[name], str) else json.dumps(example[name])}
                spots[name.lower()] = found
    return spots


def _examples(*holders: dict[str, Any]) -> frozenset[str]:
    found = set()
    for holder in holders:
        if "example" in holder:
            value = holder["example"]
            found.add(value if isinstance(value, str) else json.dumps(value))
    return frozenset(found)


def _any_mark(node: Any, components: dict[str, Any], depth: int = 0) -> bool:
    node = resolve(node, components)
    if depth > 8:
        return False
    if any(mark.get("keywords") for mark in marks_of(node)):
        return True
    children = [node.get("items"), *(node.get("oneOf") or []), *(node.get("anyOf") or []), *(node.get("allOf") or [])]
    return any(isinstance(child, dict) and _any_mark(child, components, depth + 1) for child in children)
