"""The one place a request's data lives while the mock serves it: which mock, which scope, which operation, who.

`MockHttpMiddleware` opens a `RequestContext` for every HTTP request and closes it when the answer is sent. Every
layer inside (the compiled pipeline, Connexion's stock chain, the validators, the error handler, the vendors'
handlers) reads the request through `context()`, never through the scope's ``state`` or ``extensions`` itself.

Routing and security write what they decide into the scope's ``extensions`` (Connexion's own layers do, and the
fast router does the same so both paths decide alike); the context reads it from there. Connexion hands its inner
layers shallow copies of the scope, which share that dict with the scope the context holds.
"""

from __future__ import annotations

import contextvars
import typing as t
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.types import Scope

from ..choices import Choices
from .connexion_internals import REQUEST_CONTEXT, ROUTING_CONTEXT

if t.TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["RequestContext", "choices_in_force", "context", "current"]


@dataclass(eq=False, slots=True)
class RequestContext:
    """One HTTP request as the mock serves it."""

    runtime: Runtime
    #: the scope as the mock's outermost middleware received it
    scope: Scope
    #: set by a handler whose answer may be kept (see `mockserver.http.read_cache`): until when it holds
    fresh_until: float | None = None
    _request: Request | None = field(default=None, repr=False)

    @property
    def request(self) -> Request:
        """The request, for its method, URL and headers. Its body is not here: the handler is given it, already
        read and validated."""
        if self._request is None:
            self._request = Request(self.scope)
        return self._request

    @property
    def operation_id(self) -> str | None:
        """The contract's operationId once the request is routed (None before, or for an unrouted path)."""
        operation_id = self.scope["extensions"].get(ROUTING_CONTEXT, {}).get("operation_id")
        # The resolver turns the contract's operationId into a module path; the contract's name is its end.
        return operation_id.rsplit(".", 1)[-1] if operation_id else None

    @property
    def token_info(self) -> dict[str, t.Any] | None:
        """What the security handler answered for the credential, once it accepted one."""
        return self.scope["extensions"].get(REQUEST_CONTEXT, {}).get("token_info")


current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("mockserver_request")

_DEFAULT_CHOICES = Choices()


def context() -> RequestContext:
    """The request being served; a RuntimeError outside one."""
    served = current.get(None)
    if served is None:
        raise RuntimeError("no request is being served here (the mock's middleware opens the request context)")
    return served


def choices_in_force() -> Choices:
    """The mock's choices for this request; the defaults outside a request (a validator used on its own)."""
    served = current.get(None)
    return served.runtime.choices if served is not None else _DEFAULT_CHOICES
