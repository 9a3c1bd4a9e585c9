"""Exceptions that carry an HTTP answer, and the structured request-validation error."""

from __future__ import annotations

import json
from typing import Any

from connexion.exceptions import BadRequestProblem
from starlette.responses import Response


class ApiError(Exception):
    """A finished vendor answer raised from anywhere in a request (security, limits, handlers)."""

    def __init__(
        self,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        media_type: str = "application/json",
    ) -> None:
        super().__init__(f"{status}: {body!r}")
        self.status_code = status  # Connexion ranks security failures by this attribute
        self.body = body
        self.headers = headers or {}
        self.media_type = media_type

    def response(self) -> Response:
        if self.body is None:
            content = b""
        elif isinstance(self.body, str) and self.media_type.startswith("text/"):
            content = self.body.encode()  # an HTML page the contract declares for this status
        else:
            content = json.dumps(self.body, ensure_ascii=False).encode()
        return Response(
            content,
            status_code=self.status_code,
            headers=self.headers,
            media_type=self.media_type if self.body is not None else None,
        )


class FieldError(BadRequestProblem):
    """A request broke its contract at one place. ``field`` is the dotted name of the offending parameter or
    body field (None for the body as a whole); ``rule`` is the JSON Schema keyword that failed (``required``,
    ``type``, ``pattern``, ...), or ``json`` for an unparsable body."""

    def __init__(self, *, location: str, field: str | None, rule: str, message: str, constraint: Any = None) -> None:
        super().__init__(detail=message)
        self.location = location
        self.field = field
        self.rule = rule
        self.message = message
        self.constraint = constraint
