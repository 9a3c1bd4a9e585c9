"""The contracts as the suite reads them: where they are, which operation a request went to, what is documented
and what is the mock's choice, and the two views a run can judge by.

A contract marks everything the vendor's documents do not state with ``x-mock-choice`` (a mapping, or a list of
them): ``reason`` says why, ``keywords`` which keywords of the marked object are the mock's (none: the whole
object: a status, an operation, a parameter), and ``choice`` the mock behaviour that switches it. From that:

- the **strict** view is the contract as written: everything the mock does, demanded exactly (for the mock
  itself, or a re-implementation of it);
- the **vendor** view, the default, is the contract minus the marked keywords: a vendor is held to what its
  documents say. A whole-object mark on a status keeps the status but judges only its class and body shape (the
  copy for Schemathesis adds the class range, `4XX`, with the same response); a marked operation gets no
  generated cases; a marked parameter is left out. Where the vendor differs from a mock choice, the run reports
  a note, not a failure.

The extensions the checks read stay in the strict view and leave the vendor view with their marks: `x-order` (a
list's order), `x-cursor` (what a paging cursor holds), `x-foreign-ids` (what a bulk delete does with ids that are
not the user's), `x-expiry` (whether a past expiry is refused), `x-unsupported-method` (the status of a method an
API lacks).
"""

from __future__ import annotations

import copy
import functools
import pathlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = [
    "API_MARKER",
    "Contract",
    "ContractError",
    "Mark",
    "Operation",
    "contract_file",
    "load_contract",
    "marks_of",
    "vendor_view",
]

#: the key under which the prepared copy names its API, so registered checks know which contract a case is from
API_MARKER = "x-conformance-api"
MARK = "x-mock-choice"

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class ContractError(RuntimeError):
    """The contract cannot be found or read."""


def contract_file(api: str) -> pathlib.Path:
    """The contract's file, from the mock's package when it is installed, else the checkout's `openapi/`."""
    try:
        from mockserver.contracts import contract_path
    except ImportError:
        contract_path = None
    if contract_path is not None:
        try:
            return contract_path(api)
        except (FileNotFoundError, ValueError):
            pass
    return pathlib.Path(__file__).resolve().parent.parent / "openapi" / f"{api}.yaml"


# ---------------------------------------------------------------------------------------------- marks


@dataclass(frozen=True)
class Mark:
    """One place where the contract states the mock's choice rather than the vendor's documents."""

    #: a readable location: `GET /x: query page`, `schema Intercom.created_at`, `response 404 of GET /x`
    where: str
    #: the keywords that are the mock's (empty: the whole object)
    keywords: tuple[str, ...]
    reason: str
    #: the mock behaviour that switches it (`mockserver choices`), if any
    choice: str | None = None


def marks_of(node: Any) -> list[dict[str, Any]]:
    """The mark mappings on one object (``x-mock-choice`` holds a mapping or a list of them)."""
    raw = node.get(MARK) if isinstance(node, dict) else None
    if isinstance(raw, dict):
        return [raw]
    if isinstance(raw, list):
        return [item for item in raw if isinstance(item, dict)]
    return []


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key != MARK:
                yield from _walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, str(index)))


def _describe(raw: dict[str, Any], path: tuple[str, ...]) -> str:
    """Where a marked object sits, in words."""
    if not path:
        return "the whole API"
    if path[0] == "paths" and len(path) >= 3:
        label = f"{path[2].upper()} {path[1]}"
        rest = path[3:]
        if not rest:
            return label
        if rest[0] == "responses" and len(rest) >= 2:
            return f"response {rest[1]} of {label}"
        if rest[0] == "parameters" and len(rest) >= 2:
            parameter = raw["paths"][path[1]][path[2]]["parameters"][int(rest[1])]
            return f"{label}: {parameter.get('in', '')} parameter {parameter.get('name', rest[1])}"
        return f"{label}: {'.'.join(part for part in rest if part not in ('content', 'schema', 'properties'))}"
    if path[:2] == ("components", "schemas") and len(path) >= 3:
        inner = [part for part in path[3:] if part not in ("properties", "items", "allOf")]
        return "schema " + ".".join([path[2], *inner]).replace(".oneOf.", " alternative ")
    if path[:2] == ("components", "parameters") and len(path) >= 3:
        parameter = raw["components"]["parameters"][path[2]]
        return f"{parameter.get('in', '')} parameter {parameter.get('name', path[2])}"
    if path[:2] == ("components", "responses") and len(path) >= 3:
        return f"response {path[2]}"
    return ".".join(path)


def _marks(raw: dict[str, Any]) -> list[Mark]:
    found = []
    for path, node in _walk(raw):
        for item in marks_of(node):
            keywords = tuple(str(k) for k in item.get("keywords") or ())
            found.append(Mark(_describe(raw, path), keywords, str(item.get("reason", "")).strip(), item.get("choice")))
    return found


# ---------------------------------------------------------------------------------------------- the vendor view


def _vendor_view(raw: dict[str, Any]) -> tuple[dict[str, Any], frozenset[str], frozenset[str]]:
    """The contract minus the mock's choices; also the invented operations and the component parameters left
    out (by name)."""
    view = copy.deepcopy(raw)
    invented: set[str] = set()
    dropped_parameters: set[str] = set()
    for path, node in list(_walk(view)):
        for item in marks_of(node):
            keywords = item.get("keywords") or ()
            if not keywords:
                if len(path) == 3 and path[0] == "paths" and path[2] in _METHODS:
                    invented.add(str(node.get("operationId")))
                elif path[:2] == ("components", "parameters") and len(path) == 3:
                    dropped_parameters.add(path[2])
                elif "in" in node and "name" in node:
                    node["x-conformance-drop"] = True
                continue
            for keyword in keywords:
                if keyword == "required" and "in" in node:
                    node["required"] = False  # a parameter: clients send it, its absence is not judged
                else:
                    node.pop(keyword, None)
    for item in view.get("paths", {}).values():
        for method in (*_METHODS, "parameters"):
            operation = item.get(method) if method != "parameters" else {"parameters": item.get("parameters")}
            if not isinstance(operation, dict) or not isinstance(operation.get("parameters"), list):
                continue
            operation["parameters"] = [
                parameter
                for parameter in operation["parameters"]
                if not (
                    parameter.get("x-conformance-drop")
                    or parameter.get("$ref", "").rsplit("/", 1)[-1] in dropped_parameters
                )
            ]
            if method == "parameters":
                item["parameters"] = operation["parameters"]
    return view, frozenset(invented), frozenset(dropped_parameters)


# ---------------------------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    raw: dict[str, Any] = field(repr=False, compare=False)
    statuses: frozenset[int]
    #: statuses that are the mock's choice: judged by their class and body only (empty in the strict view)
    mock_choice: frozenset[int]
    #: the whole operation is the mock's own invention (e.g. Seam's login form)
    invented: bool = False
    required_scopes: tuple[str, ...] = ()
    secured: bool = True

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def accepts(self, status: int, wanted: tuple[int, ...]) -> bool:
        """Whether `status` answers a case whose contract answer is one of `wanted`: exactly, or in the same class
        when the wanted status is the mock's choice."""
        if status in wanted:
            return True
        return any(w in self.mock_choice and w // 100 == status // 100 for w in wanted)

    def extension(self, name: str) -> Any:
        """An `x-` extension of the operation in this view (None when the view leaves it open)."""
        return self.raw.get(name)

    def path_params(self, path: str) -> dict[str, str]:
        """The path parameters of a request to this operation (``path`` relative to the base URL), by name."""
        names = re.findall(r"\{([^}]+)\}", self.path)
        regex = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(self.path))
        match = re.fullmatch(regex + "/?", path)
        return dict(zip(names, match.groups(), strict=False)) if match else {}


@dataclass(frozen=True, eq=False)
class Contract:
    """One API's contract in one view (`strict` or not)."""

    api: str
    path: pathlib.Path
    raw: dict[str, Any] = field(repr=False)
    operations: dict[str, Operation] = field(repr=False)
    strict: bool = True
    #: the contract as written (itself, in the strict view)
    source_raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def operation(self, operation_id: str) -> Operation:
        return self.operations[operation_id]

    def find(self, method: str, path: str) -> Operation | None:
        """The operation a request (path relative to the API's base URL) went to."""
        method = method.upper()
        for pattern, operation in _patterns(self):
            if operation.method == method and pattern.match(path):
                return operation
        return None

    def marks(self) -> list[Mark]:
        """Every mock choice the contract marks, in document order."""
        return _marks(self.source_raw or self.raw)

    def extension(self, name: str) -> Any:
        """A top-level `x-` extension in this view (None when the view leaves it open)."""
        return self.raw.get(name)

    def view(self, *, strict: bool) -> Contract:
        """This contract judged strictly (as written) or as a vendor (the documented part)."""
        if strict == self.strict:
            return self
        return load_contract(self.api) if strict else vendor_view(self.api)

    def prepared(self) -> dict[str, Any]:
        """A copy for Schemathesis: the contract as written (so generated cases are what the mock takes or
        refuses), the API named; in the vendor view, mock-choice statuses widened to their class. Which of its
        failures only differ from a mock choice is `conformance.judging`'s to say."""
        raw = copy.deepcopy(self.source_raw or self.raw)
        raw[API_MARKER] = self.api
        if self.strict:
            return raw
        components = raw.get("components", {}).get("responses", {})
        for item in raw.get("paths", {}).values():
            for method in _METHODS:
                operation = item.get(method)
                if not isinstance(operation, dict):
                    continue
                responses = operation.get("responses", {})
                for status, response in list(responses.items()):
                    if not str(status).isdigit() or not _is_mock_choice(response, components):
                        continue
                    responses.setdefault(f"{str(status)[0]}XX", copy.deepcopy(response))
        return raw


@functools.cache
def _patterns(contract: Contract) -> list[tuple[re.Pattern[str], Operation]]:
    result = []
    for operation in contract.operations.values():
        regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(operation.path))
        result.append((re.compile(f"^{regex}/?$"), operation))
    # Literal paths before templated ones, so `/a/codes` does not match `/a/{id}`.
    result.sort(key=lambda item: item[1].path.count("{"))
    return result


def _resolve(response: Any, components: dict[str, Any]) -> dict[str, Any]:
    if isinstance(response, dict) and "$ref" in response:
        return components.get(response["$ref"].rsplit("/", 1)[-1], {})
    return response if isinstance(response, dict) else {}


def _is_mock_choice(response: Any, components: dict[str, Any]) -> bool:
    return any(not item.get("keywords") for item in marks_of(_resolve(response, components)))


def _operations(
    raw: dict[str, Any],
    *,
    vendor: bool = False,
    invented: frozenset[str] = frozenset(),
    source: dict[str, Any] | None = None,
) -> dict[str, Operation]:
    components = raw.get("components", {}).get("responses", {})
    default_secured = bool(raw.get("security"))
    result = {}
    for path, item in raw.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            responses = operation.get("responses", {})
            statuses = frozenset(int(code) for code in responses if str(code).isdigit())
            mock = (
                frozenset(
                    int(code)
                    for code, response in responses.items()
                    if str(code).isdigit() and _is_mock_choice(response, components)
                )
                if vendor
                else frozenset()
            )
            written = (source or raw)["paths"][path][method]
            security = operation.get("security")
            result[operation["operationId"]] = Operation(
                operation_id=operation["operationId"],
                method=method.upper(),
                path=path,
                raw=operation,
                statuses=statuses,
                mock_choice=mock,
                invented=operation["operationId"] in invented or any(not m.get("keywords") for m in marks_of(written)),
                required_scopes=tuple(operation.get("x-required-scopes", ())),
                secured=bool(security) if security is not None else default_secured,
            )
    return result


@functools.cache
def load_contract(api: str) -> Contract:
    """The contract as written (the strict view); `.view(strict=False)` gives the vendor view."""
    path = contract_file(api)
    try:
        with path.open(encoding="utf-8") as handle:
            # libyaml's parser where PyYAML has it: the same document, several times faster
            raw = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as exc:
        raise ContractError(f"cannot read the {api} contract at {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ContractError(f"the {api} contract at {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or "paths" not in raw:
        raise ContractError(f"the {api} contract at {path} has no paths")
    return Contract(api=api, path=path, raw=raw, operations=_operations(raw), strict=True, source_raw=raw)


@functools.cache
def vendor_view(api: str) -> Contract:
    """The vendor view of one API's contract (cached)."""
    written = load_contract(api)
    raw, invented, _ = _vendor_view(written.raw)
    operations = _operations(raw, vendor=True, invented=invented, source=written.raw)
    return Contract(api, written.path, raw, operations, strict=False, source_raw=written.raw)
