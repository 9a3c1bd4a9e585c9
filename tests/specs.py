"""Helpers for tests that read the contracts."""

from __future__ import annotations

from typing import Any


def resolve_refs(node: Any, spec: dict[str, Any]) -> Any:
    """The node with every $ref inlined (the contracts have no recursive schemas)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve_refs(target, spec)
        return {key: resolve_refs(value, spec) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve_refs(item, spec) for item in node]
    return node
