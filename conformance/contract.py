"""The contracts as the suite uses them: where they are, which operation a request went to, which answers are
the mock's own choice, and the copy handed to Schemathesis.

Statuses marked `x-mock-choice: true` are not the vendor's documented answer but this project's pick for a case
every server must handle. A real server may answer the same case with another status of the same class; only the
class and the body's shape are judged. Schemathesis learns that from the copy: each such status also adds the
class range (`4XX`) with the same response, which OpenAPI matches when no explicit code does.
"""

from __future__ import annotations

import copy
import functools
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["API_MARKER", "Contract", "ContractError", "Operation", "contract_file", "load_contract"]

#: the key under which the prepared copy names its API, so registered checks know which contract a case is from
API_MARKER = "x-conformance-api"

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


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    raw: dict[str, Any] = field(repr=False, compare=False)
    statuses: frozenset[int]
    mock_choice: frozenset[int]
    #: the whole operation is the mock's own invention (e.g. Seam's login form)
    invented: bool = False
    required_scopes: tuple[str, ...] = ()
    secured: bool = True

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def is_read(self) -> bool:
        return self.method in ("GET", "HEAD")

    def accepts(self, status: int, wanted: tuple[int, ...]) -> bool:
        """Whether `status` answers a case whose contract answer is one of `wanted`: exactly, or in the same class
        when the wanted status is the mock's choice."""
        if status in wanted:
            return True
        return any(w in self.mock_choice and w // 100 == status // 100 for w in wanted)


@dataclass(frozen=True, eq=False)
class Contract:
    api: str
    path: pathlib.Path
    raw: dict[str, Any] = field(repr=False)
    operations: dict[str, Operation] = field(repr=False)

    def operation(self, operation_id: str) -> Operation:
        return self.operations[operation_id]

    def find(self, method: str, path: str) -> Operation | None:
        """The operation a request (path relative to the API's base URL) went to."""
        method = method.upper()
        for pattern, operation in _patterns(self):
            if operation.method == method and pattern.match(path):
                return operation
        return None

    def prepared(self) -> dict[str, Any]:
        """A copy for Schemathesis: mock-choice statuses widened to their class, and the API named."""
        raw = copy.deepcopy(self.raw)
        raw[API_MARKER] = self.api
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
                    widened = f"{str(status)[0]}XX"
                    responses.setdefault(widened, copy.deepcopy(response))
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
    return bool(_resolve(response, components).get("x-mock-choice"))


def _operations(raw: dict[str, Any]) -> dict[str, Operation]:
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
            mock = frozenset(
                int(code)
                for code, response in responses.items()
                if str(code).isdigit() and _is_mock_choice(response, components)
            )
            security = operation.get("security")
            result[operation["operationId"]] = Operation(
                operation_id=operation["operationId"],
                method=method.upper(),
                path=path,
                raw=operation,
                statuses=statuses,
                mock_choice=mock,
                invented=bool(operation.get("x-mock-choice")),
                required_scopes=tuple(operation.get("x-required-scopes", ())),
                secured=bool(security) if security is not None else default_secured,
            )
    return result


@functools.cache
def load_contract(api: str) -> Contract:
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
    return Contract(api=api, path=path, raw=raw, operations=_operations(raw))
