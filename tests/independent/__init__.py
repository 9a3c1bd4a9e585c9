"""An independent, clean-room server for the three vendor APIs, built only from the vendor documents.

Tests use it as a correct vendor that chose differently wherever the documents are silent (README.md lists
those choices):

    with serve() as server:
        token = server.credentials["seam"]["tokens"][0]
        httpx.get(server.base_url + "/seam/health", headers={"Authorization": f"Bearer {token}"})

`credentials` holds, per API: "vms" {"users": [{"login", "password"}, {...}], "intercom_id"}; "seam" {"tokens": [first
owner's, second owner's], "access_code_id" (a disposable code of the first owner), "intercom_id"}; "magicline"
{"api_key" (studio 1, all scopes), "read_only_api_key" (studio 1, CUSTOMER_READ), "other_studio_api_key" (studio 2),
"customer_id" (a studio 1 member)}.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from .server import create_app
from .world import World

__all__ = ["Served", "create_app", "credentials", "serve"]


@dataclass(frozen=True)
class Served:
    base_url: str
    credentials: dict[str, Any]
    world: World


def credentials(world: World) -> dict[str, Any]:
    """What a test needs to call each API as its seeded users."""
    owners = list(world.owners.values())
    keys = list(world.api_keys)
    house = world.intercoms[180]
    disposable = next(c for c in world.codes.values() if c.title == "Disposable")
    member = next(c for c in world.customers.values() if c.studio == 1 and c.status == "MEMBER")
    return {
        "vms": {
            "users": [{"login": o.login, "password": o.password} for o in owners],
            "intercom_id": house.id,
        },
        "seam": {
            "tokens": [next(t for t, uid in world.seam_tokens.items() if uid == o.user_id) for o in owners],
            "access_code_id": disposable.uuid,
            "intercom_id": house.uuid,
        },
        "magicline": {
            "api_key": keys[0],
            "read_only_api_key": keys[1],
            "other_studio_api_key": keys[2],
            "customer_id": member.id,
        },
    }


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextmanager
def serve(port: int | None = None) -> Iterator[Served]:
    """Runs a fresh server on 127.0.0.1 (a free port when `port` is None) until the block ends."""
    app = create_app()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this; without it each small answer waits ~40 ms on the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port or 0))
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="websockets-sansio", timeout_graceful_shutdown=2
    )
    server = _Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        if not server.ready.wait(10):
            raise RuntimeError("the independent server did not start")
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        yield Served(base_url, credentials(app.state.world), app.state.world)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
