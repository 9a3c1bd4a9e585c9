"""The three vendor APIs as one ASGI app over one shared building."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from .magicline import Magicline
from .seam import Seam
from .vms import Vms
from .world import Clock, World, system_clock


def create_app(clock: Clock = system_clock) -> Starlette:
    """A fresh building behind `/vms`, `/seam` and `/magicline`; the world is at `app.state.world`."""
    world = World(clock)
    app = Starlette(
        routes=[
            Mount("/vms", app=Vms(world)),
            Mount("/seam", app=Seam(world)),
            Mount("/magicline", app=Magicline(world)),
        ]
    )
    app.state.world = world
    return app
