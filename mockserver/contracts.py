"""Where the OpenAPI contracts are, from a checkout or from an installed distribution, and what they say."""

from __future__ import annotations

import functools
import pathlib
import re
from typing import Any

import yaml

CONTRACTS = ("magicline", "seam", "vms", "control")


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
def load_contract(name: str) -> dict[str, Any]:
    """The contract as data (cached; treat it as read-only)."""
    with contract_path(name).open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_SAFE_LOADER)


@functools.cache
def operations(name: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (method, path, operation) for one contract."""
    result = {}
    for path, item in load_contract(name)["paths"].items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch", "head", "options"}:
                result[operation["operationId"]] = (method.upper(), path, operation)
    return result


@functools.cache
def declared_statuses(name: str, operation_id: str) -> frozenset[int]:
    """The statuses one operation's contract declares (``default`` excluded)."""
    _, _, operation = operations(name)[operation_id]
    return frozenset(int(code) for code in operation.get("responses", {}) if code.isdigit())


@functools.cache
def _path_patterns(name: str) -> list[tuple[re.Pattern[str], tuple[str, ...]]]:
    patterns = []
    for path, item in load_contract(name)["paths"].items():
        methods = tuple(m.upper() for m in item if m in {"get", "put", "post", "delete", "patch", "head"})
        regex = re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        patterns.append((re.compile(f"^{regex}$"), methods))
    return patterns


def match_path(name: str, path: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """The methods the contract declares for the path a request went to (relative to the API's prefix), and
    the raw values of its path parameters."""
    for pattern, methods in _path_patterns(name):
        found = pattern.match(path)
        if found:
            return methods, found.groupdict()
    return (), {}


def allowed_methods(name: str, path: str) -> tuple[str, ...]:
    return match_path(name, path)[0]
