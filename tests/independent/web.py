"""What the three vendor apps share: a tiny method+path router and lenient body reading."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

Handler = Callable[..., Awaitable[Response]]
NOT_JSON = object()


class Routes:
    """Routes written like `/intercoms/{intercom_id}/unlock`; a `{name}` matches one path segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, template: str) -> Callable[[Handler], Handler]:
        pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")

        def register(handler: Handler) -> Handler:
            self._routes.append((method, pattern, handler))
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], list[str]]:
        """The handler and path parameters, or None and the methods the path does allow."""
        allowed: list[str] = []
        for route_method, pattern, handler in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            if route_method == method or (method == "HEAD" and route_method == "GET"):
                return handler, found.groupdict(), []
            allowed.append(route_method)
        return None, {}, allowed


def route_path(scope: Scope) -> str:
    """The path below the mount point (the vendor's base URL)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def read_body(request: Request) -> Any:
    """The parsed JSON or form body; {} when empty, NOT_JSON when it does not parse."""
    raw = await request.body()
    if not raw.strip():
        return {}
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        return json.loads(raw)
    except ValueError:
        return NOT_JSON


def php_int(value: object) -> int | None:
    """An integer as PHP's FILTER_VALIDATE_INT (Laravel's `integer` rule) reads it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?(0|[1-9]\d*)\s*", value):
        number = int(value)
        return number if -(2**63) <= number < 2**63 else None
    return None


class Abort(Exception):
    """Ends a request early with a finished vendor response (auth failures, validation, not found)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response
