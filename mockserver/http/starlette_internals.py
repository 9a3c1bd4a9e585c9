"""Every use of Starlette beyond its documented API, in one place, checked when the mock starts.

The fast router matches paths as Starlette's router does (`compile_path`, the path under `root_path`), and the
control token's cookie is read as Starlette reads cookies (`cookie_parser`). At import this module checks the
installed release against the one the tests ran on and that those are there (`supported`).
"""

from __future__ import annotations

import starlette.requests
import starlette.routing
from starlette.types import Scope

from .supported import release, require

#: the Starlette releases the tests ran on (pyproject.toml declares the same range)
LOWEST, BELOW = (1, 7), (1, 11)

require(
    "starlette",
    release("starlette"),
    LOWEST,
    BELOW,
    [(starlette.routing, "compile_path"), (starlette.requests, "cookie_parser")],
)

compile_path = starlette.routing.compile_path
cookie_parser = starlette.requests.cookie_parser


def route_path(scope: Scope) -> str:
    """The path Starlette's router matches: the scope's path less its ``root_path``, when it lies under it."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if path == root:
        return ""
    return path[len(root) :] if path[len(root)] == "/" else path
