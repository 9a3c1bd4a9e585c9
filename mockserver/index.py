"""`GET /`: where a newcomer's browser lands. It names each API's base URL and docs page, the control API,
where the demo credentials are and the live panel, as JSON (or as a page of links when a browser asks for HTML)."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from .runtime import Runtime

TITLES = {
    "magicline": "Magicline Open API, customer access",
    "seam": "Seam-compatible intercom cloud",
    "vms": "AIPIX VMS client API",
    "control": "The mock's control API",
}


def index_json(runtime: Runtime, base: str) -> dict[str, Any]:
    apis = runtime.urls(base)
    return {
        "apis": {
            name: {"title": TITLES[name], "base_url": url, "docs": f"{url}/docs/", "contract": f"{url}/openapi.json"}
            for name, url in apis.items()
        },
        "credentials": f"{base}/_mock/credentials",
        "panel": f"{base}/_mock/panel",
    }


def _page(index: dict[str, Any]) -> str:
    def link(url: str, text: str | None = None) -> str:
        return f'<a href="{html.escape(url)}">{html.escape(text or url)}</a>'

    rows = "\n".join(
        f"<li>{html.escape(api['title'])}: {link(api['base_url'])} ({link(api['docs'], 'docs')}, "
        f"{link(api['contract'], 'contract')})</li>"
        for api in index["apis"].values()
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>doorcodes mock</title></head>\n'
        f"<body>\n<h1>doorcodes mock</h1>\n<ul>\n{rows}\n</ul>\n"
        f"<p>Demo credentials, with the headers to send: {link(index['credentials'])}</p>\n"
        f"<p>Live panel of the building: {link(index['panel'])}</p>\n</body></html>\n"
    )


class Index:
    """Answers `GET /` (and `HEAD /`); every other request goes on to ``app``."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        index = index_json(self.runtime, self.runtime.base_url(headers, scope.get("scheme", "http")))
        response: Response
        if "text/html" in headers.get("accept", ""):
            response = HTMLResponse(_page(index))
        else:
            response = Response(json.dumps(index, indent=2) + "\n", media_type="application/json")
        await response(scope, receive, send)
