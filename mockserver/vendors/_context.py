"""What a handler needs from the current request: the running mock and the authenticated principal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connexion import request

if TYPE_CHECKING:
    from ..runtime import Runtime


def runtime() -> Runtime:
    return request.scope["state"]["mock"]


def principal() -> dict[str, Any]:
    """The token info the security handler answered for this request."""
    return request.context["token_info"]


def header(name: str) -> str | None:
    return request.headers.get(name)


def base_url() -> str:
    return runtime().base_url(request.headers, request.url.scheme)
