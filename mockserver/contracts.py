"""The OpenAPI contracts, as both the mock and the conformance suite read them: where they are, their operations,
paths and `$ref`s, what is documented and what is the mock's choice, and the two views a conformance run judges
by. The one model of the contracts in this project.

A contract marks everything the vendor's documents do not state with ``x-mock-choice`` (a mapping, or a list of
them): ``reason`` says why, ``keywords`` which keywords of the marked object are the mock's (none: the whole
object: a status, an operation, a parameter), and ``choice`` the mock behaviour that switches it
(`mockserver.choices`). From that:

- the **strict** view is the contract as written: everything the mock does, demanded exactly (for the mock
  itself, or a re-implementation of it);
- the **vendor** view is the contract minus the marked keywords: a vendor is held to what its documents say. A
  whole-object mark on a status keeps the status but judges only its class and body shape (the copy for
  Schemathesis adds the class range, `4XX`, with the same response); a marked operation gets no generated cases;
  a marked parameter is left out.

The extensions the conformance checks read stay in the strict view and leave the vendor view with their marks:
`x-order` (a list's order), `x-cursor` (what a paging cursor holds), `x-foreign-ids` (what a bulk delete does with
ids that are not the user's), `x-expiry` (whether a past expiry is refused), `x-unsupported-method` (the status of
a method an API lacks).
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
    "CONTRACTS",
    "Contract",
    "ContractError",
    "Mark",
    "Operation",
    "contract_path",
    "contracts_dir",
    "document",
    "load_contract",
    "marks_of",
    "vendor_view",
]

CONTRACTS = ("magicline", "seam", "vms", "control")
#: the key under which a copy prepared for Schemathesis names its API, so registered checks know its contract
API_MARKER = "x-conformance-api"
MARK = "x-mock-choice"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class ContractError(RuntimeError):
    """The contract cannot be found or read."""


def contracts_dir() -> pathlib.Path:
    """The folder holding the contracts: inside the installed package, or the checkout's top-level `openapi/`."""
    packaged = pathlib.Path(__file__).parent / "openapi"
    if (packaged / "vms.yaml").is_file():
        return packaged
    checkout = pathlib.Path(__file__).resolve().parent.parent / "openapi"
    if (checkout / "vms.yaml").is_file():
        return checkout
    raise FileNotFoundError("the OpenAPI contracts are missing from this installation")


def contract_path(name: str) -> pathlib.Path:
    """The file of one contract: ``magicline``, ``seam``, ``vms`` or ``control``."""
    if name not in CONTRACTS:
        raise ValueError(f"unknown contract {name!r}; known: {', '.join(CONTRACTS)}")
    return contracts_dir() / f"{name}.yaml"


#: libyaml's parser where PyYAML has it (the usual wheels do): the same documents, several times faster
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def document(name: str) -> dict[str, Any]:
    """The contract as data, as written (cached; treat it as read-only)."""
    try:
        path = contract_path(name)
        with path.open(encoding="utf-8") as handle:
            raw = yaml.load(handle, Loader=_SAFE_LOADER)
    except (OSError, ValueError) as exc:
        raise ContractError(f"cannot read the {name} contract: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ContractError(f"the {name} contract is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or "paths" not in raw:
        raise ContractError(f"the {name} contract has no paths")
    return raw


# ---------------------------------------------------------------------------------------------- marks


@dataclass(frozen=True)
class Mark:
    """One place where the contract states the mock's choice rather than the vendor's documents."""

    #: a readable location: `GET /x: query parameter page`, `schema Intercom.created_at`, `response 404 of GET /x`
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


def marked_keywords(node: Any) -> set[str]:
    """The keywords of one object that marks make the mock's."""
    return {str(keyword) for mark in marks_of(node) for keyword in mark.get("keywords") or ()}


def wholly_marked(node: Any) -> bool:
    """Whether one object as a whole is the mock's choice (a mark without keywords)."""
    return any(not mark.get("keywords") for mark in marks_of(node))


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
    #: the contract's components, for `$ref`s
    components: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

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
        match = _template(self.path).fullmatch(path) or _template(self.path).fullmatch(path.rstrip("/"))
        return match.groupdict() if match else {}

    def parameters(self) -> list[dict[str, Any]]:
        """The operation's parameters, `$ref`s resolved."""
        return [resolve(parameter, self.components) for parameter in self.raw.get("parameters", [])]

    def parameter(self, name: str, location: str) -> dict[str, Any]:
        """One parameter by name (header names in any case) and location, or an empty mapping."""
        for parameter in self.parameters():
            if parameter.get("in") == location and str(parameter.get("name", "")).lower() == name.lower():
                return parameter
        return {}

    def body_schema(self, media_type: str = "application/json") -> dict[str, Any]:
        """The request body's schema for a media type, `$ref` resolved (empty when there is none)."""
        content = self.raw.get("requestBody", {}).get("content", {})
        return resolve(content.get(media_type, {}).get("schema", {}), self.components)

    def required_body_fields(self) -> list[str]:
        """The JSON body's required fields."""
        return list(self.body_schema().get("required", []))


def resolve(node: Any, components: dict[str, Any]) -> dict[str, Any]:
    """An object with its local `$ref` followed (``#/components/...``), as often as it takes."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 16:
        target: Any = {"components": components}
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node, seen = target, seen + 1
    return node if isinstance(node, dict) else {}


@functools.cache
def _template(path: str) -> re.Pattern[str]:
    """A path template as a regex with one named group per parameter."""
    return re.compile(re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)))


@dataclass(frozen=True, eq=False)
class Contract:
    """One API's contract in one view (`strict` or not)."""

    api: str
    raw: dict[str, Any] = field(repr=False)
    operations: dict[str, Operation] = field(repr=False)
    strict: bool = True
    #: the contract as written (the same as `raw` in the strict view)
    source_raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def operation(self, operation_id: str) -> Operation:
        return self.operations[operation_id]

    def find(self, method: str, path: str) -> Operation | None:
        """The operation a request (path relative to the API's base URL, a trailing slash allowed) went to."""
        method = method.upper()
        for operation in self._by_specificity:
            if operation.method == method and _template(operation.path).fullmatch(path.rstrip("/") or "/"):
                return operation
        return None

    def match(self, path: str) -> tuple[tuple[str, ...], dict[str, str]]:
        """The methods declared for the path a request went to (no trailing slash), and the raw values of its path
        parameters; nothing when no path matches."""
        for template, item in self.raw.get("paths", {}).items():
            found = _template(template).fullmatch(path)
            if found:
                return tuple(m.upper() for m in item if m in METHODS and m != "options"), found.groupdict()
        return (), {}

    @functools.cached_property
    def _by_specificity(self) -> list[Operation]:
        # Literal paths before templated ones, so `/a/codes` does not go to `/a/{id}`.
        return sorted(self.operations.values(), key=lambda operation: operation.path.count("{"))

    def resolve(self, node: Any) -> dict[str, Any]:
        return resolve(node, self.raw.get("components", {}))

    def marks(self) -> list[Mark]:
        """Every mock choice the contract marks, in document order."""
        raw = self.source_raw or self.raw
        found = []
        for path, node in _walk(raw):
            for item in marks_of(node):
                keywords = tuple(str(k) for k in item.get("keywords") or ())
                reason = str(item.get("reason", "")).strip()
                found.append(Mark(_describe(raw, path), keywords, reason, item.get("choice")))
        return found

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
        refuses), the API named; in the vendor view, mock-choice statuses widened to their class."""
        raw = copy.deepcopy(self.source_raw or self.raw)
        raw[API_MARKER] = self.api
        if self.strict:
            return raw
        components = raw.get("components", {})
        for item in raw.get("paths", {}).values():
            for method in METHODS:
                operation = item.get(method)
                if not isinstance(operation, dict):
                    continue
                responses = operation.get("responses", {})
                for status, response in list(responses.items()):
                    if str(status).isdigit() and wholly_marked(resolve(response, components)):
                        responses.setdefault(f"{str(status)[0]}XX", copy.deepcopy(response))
        return raw


def _operations(
    raw: dict[str, Any], *, vendor: bool = False, source: dict[str, Any] | None = None
) -> dict[str, Operation]:
    components = raw.get("components", {})
    default_secured = bool(raw.get("security"))
    result = {}
    for path, item in raw.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            responses = operation.get("responses", {})
            statuses = frozenset(int(code) for code in responses if str(code).isdigit())
            mock = frozenset(
                int(code)
                for code, response in responses.items()
                if vendor and str(code).isdigit() and wholly_marked(resolve(response, components))
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
                invented=wholly_marked(written),
                required_scopes=tuple(operation.get("x-required-scopes", ())),
                secured=bool(security) if security is not None else default_secured,
                components=components,
            )
    return result


@functools.cache
def load_contract(name: str) -> Contract:
    """The contract as written (the strict view); `.view(strict=False)` gives the vendor view."""
    raw = document(name)
    return Contract(api=name, raw=raw, operations=_operations(raw), strict=True, source_raw=raw)


@functools.cache
def vendor_view(name: str) -> Contract:
    """The contract minus the mock's choices: what a vendor is held to (cached)."""
    written = load_contract(name)
    raw = _without_marked_keywords(written.raw)
    return Contract(name, raw, _operations(raw, vendor=True, source=written.raw), strict=False, source_raw=written.raw)


def _without_marked_keywords(written: dict[str, Any]) -> dict[str, Any]:
    """A copy with each marked keyword dropped, and each wholly marked parameter left out."""
    view = copy.deepcopy(written)
    dropped_components: set[str] = set()
    for path, node in list(_walk(view)):
        if wholly_marked(node) and "in" in node and "name" in node:
            if path[:2] == ("components", "parameters"):
                dropped_components.add(path[2])
            node["x-conformance-drop"] = True
            continue
        for keyword in marked_keywords(node):
            if keyword == "required" and "in" in node:
                node["required"] = False  # a parameter: clients send it, its absence is not judged
            else:
                node.pop(keyword, None)
    for item in view.get("paths", {}).values():
        holders = [item] + [item[m] for m in METHODS if isinstance(item.get(m), dict)]
        for holder in holders:
            if isinstance(holder.get("parameters"), list):
                holder["parameters"] = [
                    parameter
                    for parameter in holder["parameters"]
                    if not parameter.get("x-conformance-drop")
                    and parameter.get("$ref", "").rsplit("/", 1)[-1] not in dropped_components
                ]
    return view
