"""CORS for browsers, with the vendor's own error body when a preflight is refused.

Starlette's `CORSMiddleware` answers every request a browser makes across origins. A preflight it refuses (a
method outside the standard ones, or a private-network request) got its own ``400 text/plain`` body, which no
vendor sends: here such a preflight gets the vendor's answer instead, as the request itself would get it. A method
the path does not have is the vendor's 405, naming the methods it has; anything else refused is the vendor's 403.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping

from connexion.lifecycle import ConnexionRequest
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import ErrorHandler, vendor_for_path

if t.TYPE_CHECKING:
    from .vendor import Vendor

PRIVATE_NETWORK = "Requests from public origins to this private network are not allowed"

#: headers of Starlette's refusal that say nothing about its body
_KEPT = frozenset({"vary", "access-control-allow-origin", "access-control-allow-methods", "access-control-max-age"})


class VendorCors(CORSMiddleware):
    def __init__(
        self, app: ASGIApp, *, vendors: Mapping[str, Vendor], error_handler: ErrorHandler, **options: t.Any
    ) -> None:
        super().__init__(app, **options)
        self.vendors = vendors
        self.error_handler = error_handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                response = self.preflight_response(request_headers=headers)
                if response.status_code >= 400:
                    response = await self._refusal(scope, receive, headers, response)
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _refusal(self, scope: Scope, receive: Receive, headers: Headers, refused: Response) -> Response:
        """The vendor's answer to a refused preflight, with Starlette's CORS headers."""
        kept = {name: value for name, value in refused.headers.items() if name in _KEPT}
        requested = headers["access-control-request-method"]
        if requested not in self.allow_methods:
            # The answer the request itself would get: the vendor's 405 for this method, naming the path's methods.
            request = ConnexionRequest({**scope, "method": requested}, receive)
            answer = await self.error_handler(request, HTTPException(405))
        else:
            # Every origin and header is allowed: what is left is a private-network request, which is not.
            vendor = vendor_for_path(self.vendors, scope["path"])
            request = ConnexionRequest(scope, receive)
            if vendor is not None:
                error = vendor.forbidden(request, PRIVATE_NETWORK)
                response = error.response()
                response.headers.update(kept)
                return response
            answer = await self.error_handler(request, HTTPException(403, PRIVATE_NETWORK))
        return Response(
            content=answer.body,
            status_code=answer.status_code,
            media_type=answer.mimetype,
            headers={**kept, **(answer.headers or {})},
        )
