"""Exceptions that carry an HTTP answer, the structured request-validation error, and the mapping of whatever a
request raised to the answer it gets (`error_handler`)."""

from __future__ import annotations

import json
import logging
import typing as t
from collections.abc import Mapping
from typing import Any

from connexion.exceptions import (
    BadRequestProblem,
    NonConformingResponse,
    ProblemException,
    UnsupportedMediaTypeProblem,
)
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ..contracts import load_contract
from ..domain.errors import DomainError
from ..store.base import StoreUnavailable
from .context import context

if t.TYPE_CHECKING:
    from .vendor import Vendor

log = logging.getLogger("mockserver")


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


# ---------------------------------------------------------------------------------------------- error mapping

#: what Connexion's exception middleware (and the fast router, and the CORS refusals) call with what was raised
ErrorHandler = t.Callable[[ConnexionRequest, Exception], t.Awaitable[ConnexionResponse]]


def vendor_for_path(vendors: Mapping[str, Vendor], path: str) -> Vendor | None:
    """The vendor API that serves ``path``, if any."""
    for vendor in vendors.values():
        if path == vendor.prefix or path.startswith(vendor.prefix + "/"):
            return vendor
    return None


def error_handler(vendors: Mapping[str, Vendor]) -> ErrorHandler:
    """The answer to anything raised while serving a request: the vendor's own error body on a vendor's paths, an
    RFC 7807 problem elsewhere (the control API, paths of no API)."""

    async def handle(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        vendor = vendor_for_path(vendors, request.url.path)
        if vendor is None:
            return problem(request, exc)
        error = as_api_error(vendor, request, exc, context().operation_id)
        response = error.response()
        body = b"" if request.method == "HEAD" else response.body
        return ConnexionResponse(
            status_code=error.status_code,
            mimetype=error.media_type if body else None,
            body=body,
            headers=dict(error.headers),
        )

    return handle


def as_api_error(vendor: Vendor, request: ConnexionRequest, exc: Exception, operation_id: str | None) -> ApiError:
    """``exc`` as ``vendor`` answers it."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, FieldError):
        return vendor.invalid(request, exc, operation_id)
    if isinstance(exc, DomainError):
        return vendor.domain_error(request, exc, operation_id)
    if isinstance(exc, StoreUnavailable):
        log.warning("the shared building was unavailable on %s %s: %s", request.method, request.url.path, exc)
        return unavailable(vendor, request, operation_id)
    if isinstance(exc, UnsupportedMediaTypeProblem):
        return vendor.invalid(
            request,
            FieldError(location="header", field="Content-Type", rule="mediaType", message=str(exc.detail)),
            operation_id,
        )
    if isinstance(exc, BadRequestProblem):
        rule = "required" if "required" in str(exc.detail) or "empty" in str(exc.detail) else "json"
        return vendor.invalid(
            request, FieldError(location="body", field=None, rule=rule, message=str(exc.detail)), operation_id
        )
    if isinstance(exc, NonConformingResponse):
        log.error("response broke the contract: %s %s: %s", request.method, request.url.path, exc.detail)
        return vendor.server_error(request)
    status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
    if status == 401:
        return vendor.unauthenticated(request)
    if status == 403:
        return vendor.forbidden(request, "")
    if status == 404:
        return vendor.not_found(request, f"The route {request.url.path} could not be found.")
    if status == 405:
        return _wrong_method(vendor, request, exc, operation_id)
    if isinstance(exc, ProblemException | HTTPException) and status and 400 <= status < 500:
        return vendor.invalid(
            request,
            FieldError(location="body", field=None, rule="json", message=str(getattr(exc, "detail", exc))),
            operation_id,
        )
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return vendor.server_error(request)


#: seconds a client is asked to wait before it tries again when the building is unavailable
RETRY_AFTER_S = 1
UNAVAILABLE_MESSAGE = "The building is busy or out of reach; try again shortly"


def unavailable(vendor: Vendor, request: ConnexionRequest, operation_id: str | None) -> ApiError:
    """The answer to a request the shared building could not serve in time (`StoreUnavailable`: Redis out of
    reach, or other replicas committing first past the deadline): in the vendor's body, at a status the operation
    declares.

    - An operation that declares 503 gets it: every Magicline operation that reads the building.
    - VMS declares no server error anywhere. Every VMS operation declares 429, Laravel's "Too Many Attempts." with
      ``Retry-After``: the one declared answer that tells a client to send the same request again shortly, which is
      what an unavailable building asks of it.
    - Seam answers with the error id ``SERVICE_UNAVAILABLE`` and a message that says to try again, at the first
      status of these the operation declares: 503 (a mock choice, declared where nothing else fits: listing the
      intercoms, which declares only 401 besides success); 500, on the two operations that drive a device (unlock,
      delete a code); else 400 (the others declare only client errors besides success, and 404 would say the thing
      is gone).
    """
    declared = load_contract(vendor.name).operation(operation_id).statuses if operation_id else frozenset()
    if vendor.name == "seam":
        for status in (503, 500, 400):
            if status in declared:
                return ApiError(status, {"error_id": "SERVICE_UNAVAILABLE", "error_message": UNAVAILABLE_MESSAGE})
    if 503 in declared:
        return vendor.status(request, 503, operation_id)
    if 429 in declared:
        return vendor.rate_limited(request, RETRY_AFTER_S)
    return vendor.server_error(request)  # no operation was routed: there is no declaration to choose from


def _wrong_method(vendor: Vendor, request: ConnexionRequest, exc: Exception, operation_id: str | None) -> ApiError:
    """Starlette's 405, as the vendor answers it. Starlette names only the first matching route's methods; the
    contract knows them all."""
    # scope["path"], not request.url.path: urlsplit drops tabs and CR/LF, which would route to another path.
    methods, params = load_contract(vendor.name).match(request.scope["path"].removeprefix(vendor.prefix))
    if request.method in methods:
        # The method is right, so a typed path parameter did not parse (e.g. a letter for an int64 id).
        field = next((name for name, value in params.items() if not value.isdigit()), None)
        return vendor.invalid(
            request,
            FieldError(
                location="path",
                field=field,
                rule="type",
                message=f"{field} must be an integer",
                constraint="integer",
            ),
            operation_id,
        )
    if vendor.choices.value("unsupported_method") == "not_found":
        return vendor.not_found(request, f"The route {request.url.path} could not be found.")
    allowed = ", ".join(methods) or (getattr(exc, "headers", None) or {}).get("Allow", "")
    return vendor.method_not_allowed(request, allowed)


def problem(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """The control API (and paths of no API) answer RFC 7807 problems."""
    if isinstance(exc, ProblemException):
        status, title, detail = exc.status, exc.title, exc.detail
    elif isinstance(exc, HTTPException):
        status, title, detail = exc.status_code, "Error", exc.detail
    elif isinstance(exc, FieldError):
        status, title, detail = 400, "Bad Request", exc.message
    elif isinstance(exc, DomainError):
        status = 404 if exc.code == "not_found" else 409 if exc.code == "conflict" else 400
        title, detail = "Refused", exc.message
    elif isinstance(exc, ValueError):
        status, title, detail = 400, "Bad Request", str(exc)
    elif isinstance(exc, StoreUnavailable):
        status, title, detail = 503, "Service Unavailable", str(exc)
    else:
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        status, title, detail = 500, "Internal Server Error", "Unexpected error"
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": str(detail)})
    return ConnexionResponse(status_code=status, mimetype="application/problem+json", body=body.encode())
