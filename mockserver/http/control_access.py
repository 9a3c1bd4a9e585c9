"""Who may use the control API (`/_mock`) when the mock runs off loopback: whoever shows the control token.

Scripts send it in the `X-Mock-Control-Token` header. A browser cannot add a header to a page it opens nor to the
panel's websocket, so the panel takes the token once in its address (`/_mock/panel?token=...`) and answers with a
cookie that carries it from then on (see `mockserver.panel`). The cookie is HttpOnly and SameSite=Strict, and it
counts only on requests from the mock's own origin: SameSite ignores ports, so without that check a page served
on another port of the same host could make the browser call the control API with the cookie.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl, urlsplit

from starlette.types import Scope

from .headers import first_header, request_host
from .starlette_internals import cookie_parser

CONTROL_PREFIX = "/_mock"
PANEL_PATH = CONTROL_PREFIX + "/panel"
#: the panel's push channel (a websocket)
PANEL_LIVE = PANEL_PATH + "/live"
TOKEN_HEADER = b"x-mock-control-token"
#: the query parameter that hands the panel the token once
TOKEN_PARAMETER = "token"


def guards(path: str) -> bool:
    """Whether the control token guards ``path``."""
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def cookie_name(scope: Scope) -> str:
    """The cookie that carries the token, one per port the browser sees: browsers share a host's cookies between
    its ports, and two mocks on one host have two tokens."""
    _, colon, port = request_host(scope).rpartition(":")
    return f"doorcodes_control_{port if colon and port.isdigit() else 'default'}"


def _same(given: str, token: str) -> bool:
    # Bytes, not text: compare_digest refuses text beyond ASCII.
    return hmac.compare_digest(given.encode("latin-1", errors="replace"), token.encode())


def _from_own_origin(scope: Scope, public_url: str | None) -> bool:
    """No Origin (a navigation, a script) or the mock's own: the host the request names, or ``public_url``'s."""
    origin = first_header(scope["headers"], b"origin")
    if origin is None:
        return True
    netloc = urlsplit(origin).netloc
    own = {request_host(scope)}
    if public_url:
        own.add(urlsplit(public_url).netloc)
    return netloc in own


def token_shown(scope: Scope, token: str, public_url: str | None = None) -> bool:
    """Whether the request shows ``token``: in the header (the first of that name, as everywhere), in the panel's
    cookie from the mock's own origin, or as ``?token=`` on the panel's page."""
    header = first_header(scope["headers"], TOKEN_HEADER)
    if header is not None and _same(header, token):
        return True
    cookies = first_header(scope["headers"], b"cookie")
    if cookies:
        given = cookie_parser(cookies).get(cookie_name(scope))
        if given is not None and _same(given, token) and _from_own_origin(scope, public_url):
            return True
    if scope["path"] == PANEL_PATH and scope.get("method") == "GET":
        query = scope.get("query_string", b"").decode("latin-1")
        given = dict(parse_qsl(query)).get(TOKEN_PARAMETER)
        if given is not None and _same(given, token):
            return True
    return False
