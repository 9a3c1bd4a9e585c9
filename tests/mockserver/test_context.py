"""The mock's shape as its users rely on it: one request context per request, and a runtime that does not change."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mockserver.app import MockApp, create_app
from mockserver.domain.clock import ManualClock
from mockserver.http.context import current

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def _call(
    app: MockApp,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any = None,
    gate: tuple[asyncio.Event, asyncio.Event] | None = None,
) -> tuple[int, Any]:
    """One request straight to the ASGI app. With ``gate`` (reached, opened), its body is asked for, which sets
    the first event, and arrives once the second is set: another request can run to its end meanwhile, while this
    one is half-way through (authenticated, not yet handled)."""
    raw = b"" if body is None else json.dumps(body).encode()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if gate is not None:
            reached, opened = gate
            reached.set()
            await opened.wait()
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    header_list = [(b"host", b"mock.test")] + [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if raw:
        header_list += [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": header_list,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, json.loads(content) if content else None


@pytest.mark.parametrize("pipeline", ["compiled", "connexion"])
def test_a_request_sees_its_own_context_while_another_runs(pipeline: str) -> None:
    app = create_app(seed=0, clock=ManualClock(START, frozen=True), pipeline=pipeline)

    async def scenario() -> None:
        _, credentials = await _call(app, "GET", "/_mock/credentials", {})
        alice, bob = (user["headers"] for user in credentials["vms"][:2])
        expires = {"expired_at": "2026-03-02 09:00"}
        reached, opened = asyncio.Event(), asyncio.Event()
        # Alice's request is authenticated and waits for its body while Bob's runs from start to end.
        alices = asyncio.ensure_future(
            _call(
                app, "POST", "/vms/api/v1/intercom/180/codes", alice, {"title": "alice's", **expires}, (reached, opened)
            )
        )
        await reached.wait()
        bobs = await _call(app, "POST", "/vms/api/v1/intercom/190/codes", bob, {"title": "bob's", **expires})
        opened.set()
        assert bobs[0] == 200 and (await alices)[0] == 200
        for headers, own, other in ((alice, "alice's", "bob's"), (bob, "bob's", "alice's")):
            _, page = await _call(app, "GET", "/vms/api/v1/intercom/codes", headers)
            titles = {code["title"] for code in page["data"]}
            assert own in titles and other not in titles
        assert current.get(None) is None  # each request's context ended with it

    asyncio.run(scenario())


def test_the_runtime_and_the_app_do_not_change_once_built() -> None:
    app = create_app(seed=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        app.runtime.control_token = "t0ken"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        app.read_cache = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        del app.runtime.vendors["vms"]  # type: ignore[attr-defined]
    assert app.runtime.control_token is None and "vms" in app.runtime.vendors
