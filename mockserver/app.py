"""`create_app`: the one place that wires the building, the store, the clock and the four APIs together."""

from __future__ import annotations

import copy
import logging
import pathlib
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import yaml
from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.middleware import MiddlewarePosition
from connexion.middleware.exceptions import ExceptionMiddleware
from connexion.middleware.main import ConnexionMiddleware
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import RelativeResolver
from starlette.exceptions import HTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp

from .choices import ChoiceBoard, Choices
from .contracts import document
from .domain.building import Building, Rules
from .domain.clock import ManualClock
from .http.connexion_internals import remember_valid_contracts
from .http.cors import VendorCors
from .http.errors import ErrorHandler, error_handler
from .http.fast_routing import FastRouter
from .http.faults import Faults
from .http.journal import Journal
from .http.middleware import LimitsAndFaults, MockHttpMiddleware
from .http.pipeline import FastPipeline
from .http.ratelimit import FixedWindowLimiter, Limiter
from .http.read_cache import ReadCache
from .http.security import security_map
from .http.validation import VALIDATOR_MAP
from .http.vendor import Vendor
from .index import Index
from .panel_feed import PanelFeed
from .push import PusherHub
from .runtime import Runtime, Settings, open_state
from .store import Store, open_store
from .vendors.magicline import MagiclineVendor
from .vendors.seam import SeamVendor
from .vendors.vms import VmsVendor, push_subscriber
from .webhooks import Webhooks

if TYPE_CHECKING:
    from .fanout import RedisFanout

log = logging.getLogger("mockserver")

VENDOR_APIS = ("magicline", "seam", "vms")
DEMO_FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "demo.yaml"
VENDOR_CLASSES: dict[str, type[Vendor]] = {"magicline": MagiclineVendor, "seam": SeamVendor, "vms": VmsVendor}
PIPELINES = ("compiled", "connexion")
PUSHER_APP_KEY = "doorcodes-vms"


@dataclass(frozen=True, eq=False)
class MockApp:
    """The ASGI application of one mock, the runtime behind it, and what its HTTP side keeps."""

    asgi: ASGIApp
    runtime: Runtime
    #: answers to reads kept while nothing they depend on changed (`mockserver.http.read_cache`); None keeps none
    read_cache: ReadCache | None = None
    #: requests it routes straight to their operations (`mockserver.http.fast_routing`); None: Connexion routes all
    router: FastRouter | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.asgi(scope, receive, send)


def _contract(name: str) -> dict[str, Any]:
    """A contract for Connexion, as data: given a file, Connexion would parse it anew for every app with PyYAML's
    pure-Python parser (two thirds of a mock's start-up); the parse is kept once per process instead, and each
    app gets its own copy."""
    return copy.deepcopy(document(name))


def load_fixtures(source: str | pathlib.Path | dict[str, Any] | None) -> dict[str, Any]:
    """Fixture data from a YAML file, a dict, or the built-in demo building (None)."""
    if isinstance(source, dict):
        return source
    path = pathlib.Path(source) if source is not None else DEMO_FIXTURES
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: fixtures must be a mapping")
    return data


def create_app(
    *,
    store: Store | None = None,
    state_path: str | pathlib.Path | None = None,
    fixtures: str | pathlib.Path | dict[str, Any] | None = None,
    seed: int | None = None,
    apis: tuple[str, ...] = VENDOR_APIS,
    clock: ManualClock | None = None,
    public_url: str | None = None,
    control_token: str | None = None,
    settings: Settings | None = None,
    rules: Rules | None = None,
    validate_responses: bool = False,
    pipeline: str = "compiled",
    read_cache: bool = True,
    choices: Mapping[str, str] | None = None,
) -> MockApp:
    """Build a mock. State comes from ``store`` (or a SQLite file at ``state_path``, or memory); an empty store
    is filled from ``fixtures`` (the demo building by default), an existing one is used as it is. ``pipeline``
    "compiled" (the default) runs each operation through `mockserver.http.pipeline`; "connexion" uses Connexion's
    stock middleware chain with Connexion's own validators: the reference tests/mockserver/test_pipeline.py holds
    the compiled pipeline to (its error bodies name no field; that test names each way the two differ).
    ``read_cache`` lets the compiled pipeline serve a read's answer again while nothing it depends on has changed
    (`mockserver.http.read_cache`). ``choices`` sets the mock's choices (`mockserver.choices`) over the fixtures'
    `choices:`; a state that already exists keeps the ones it saved except those ``choices`` names.

    This is the composition root: every part is built here, each given what it uses, and the runtime that holds
    them last."""
    unknown = set(apis) - set(VENDOR_APIS)
    if unknown:
        raise ValueError(f"unknown APIs {sorted(unknown)}; choose from {', '.join(VENDOR_APIS)}")
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}")
    # Connexion warns on every body of an operation that accepts several media types; ours do on purpose.
    logging.getLogger("connexion.operations.openapi3").setLevel(logging.ERROR)
    fixture_data = load_fixtures(fixtures)
    given_choices = {**(fixture_data.get("choices") or {}), **(choices or {})}
    store = store if store is not None else open_store(str(state_path) if state_path else None)
    # Replicas sharing a store must not draw the same ids and codes from the same seed.
    shared = bool(getattr(store, "shared", False))
    clock = clock or ManualClock()
    settings = settings or Settings()
    building = Building(store, clock, seed=None if shared else seed, rules=rules)
    board = ChoiceBoard(Choices(given_choices))
    own_secret = secrets.token_hex(16) if seed is None else f"secret-{seed}"
    secret, seen = open_state(
        building, clock, fixture_data, board, given_choices, pusher_secret=own_secret, shared=shared
    )

    hub = PusherHub(PUSHER_APP_KEY, secret, rng=random.Random(None if shared else seed))
    journal, limiter, fanout = _replica_parts(store, hub, settings) if shared else _own_parts(settings)
    vendors = MappingProxyType(
        {
            name: VENDOR_CLASSES[name](
                building=building, clock=clock, settings=settings, limiter=limiter, choices=board
            )
            for name in apis
        }
    )
    runtime = Runtime(
        building=building,
        clock=clock,
        fixtures=fixture_data,
        settings=settings,
        vendors=vendors,
        journal=journal,
        faults=Faults(seed),
        limiter=limiter,
        hub=hub,
        webhooks=Webhooks(clock),
        panel=PanelFeed(),
        choice_board=board,
        pusher_app_key=PUSHER_APP_KEY,
        pusher_app_secret=secret,
        public_url=public_url.rstrip("/") if public_url else None,
        control_token=control_token,
        fanout=fanout,
        seen=seen,
    )

    if shared:
        runtime.faults.on_change = runtime.save_faults

    def on_clock_change(_clock: ManualClock) -> None:
        runtime.save_clock()
        building.tick()
        runtime.webhooks.wake()
        runtime.panel.poke()

    clock.on_change = on_clock_change
    building.subscribe(push_subscriber(building, runtime.pushes, board))
    building.subscribe(runtime.webhooks.on_event)
    building.subscribe(runtime.panel.poke)

    handle_error = error_handler(vendors)
    cache = None
    router = None
    if pipeline == "compiled":
        if read_cache and store.revision is not None:
            cache = ReadCache(store, clock, building)
        if not validate_responses:
            # Response validation sits between routing and the operations, so it needs the full chain.
            router = FastRouter(handle_error)
    asgi = _http_app(
        runtime,
        pipeline=pipeline,
        validate_responses=validate_responses,
        read_cache=cache,
        router=router,
        handle_error=handle_error,
    )
    return MockApp(asgi=asgi, runtime=runtime, read_cache=cache, router=router)


def _own_parts(settings: Settings) -> tuple[Journal, Limiter, None]:
    """The journal and the rate-limit counters of a mock alone with its store; its pushes go to its own hub."""
    return Journal(settings.journal_size), FixedWindowLimiter(), None


def _replica_parts(store: Store, hub: PusherHub, settings: Settings) -> tuple[Journal, Limiter, RedisFanout]:
    """The journal, the rate-limit counters and the pushes in Redis, for replicas that share ``store``."""
    from .fanout import RedisFanout
    from .shared_state import RedisJournal, RedisLimiter

    url, namespace = store.url, store.namespace  # type: ignore[attr-defined]
    return (
        RedisJournal(url, namespace, settings.journal_size),
        RedisLimiter(url, namespace, store.turns),  # type: ignore[attr-defined]
        RedisFanout(hub, url, namespace, store.turns),  # type: ignore[attr-defined]
    )


def _http_app(
    runtime: Runtime,
    *,
    pipeline: str,
    validate_responses: bool,
    read_cache: ReadCache | None,
    router: FastRouter | None,
    handle_error: ErrorHandler,
) -> ASGIApp:
    """The four APIs behind Connexion, CORS, the index page and the mock's own middleware."""
    if pipeline == "compiled":
        chain: list[Any] = [ServerErrorMiddleware, ExceptionMiddleware, SwaggerUIMiddleware, RoutingMiddleware]
        if validate_responses:
            chain.append(ResponseValidationMiddleware)
        chain.append(FastPipeline)
    else:
        chain = list(ConnexionMiddleware.default_middlewares)
    # The stock chain keeps Connexion's own validators: it is the reference the compiled pipeline is held to.
    validators = VALIDATOR_MAP if pipeline == "compiled" else None
    remember_valid_contracts()
    app = AsyncApp(__name__, validator_map=validators, validate_responses=validate_responses, middlewares=chain)
    # Accepted credentials are kept with the read cache, on the same terms: until the store changes.
    store = runtime.building.store
    revision = (lambda: store.revision) if read_cache is not None else None
    # What the compiled pipeline's operations are given (Connexion's own middlewares take no notice).
    compiled = {"read_cache": read_cache, "router": router}
    for name, vendor in runtime.vendors.items():
        app.add_api(
            _contract(name),
            base_path=vendor.prefix,
            name=name,
            resolver=RelativeResolver(f"mockserver.vendors.{name}"),
            security_map=vendor.security_map(revision),
            swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs"),
            api_name=name,
            **compiled,
        )
    app.add_api(
        _contract("control"),
        base_path="/_mock",
        name="control",
        resolver=RelativeResolver("mockserver.control"),
        security_map=security_map(api_key=lambda request, token, scheme: {"sub": "control"}),
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs"),
        api_name="control",
        **compiled,
    )
    if pipeline == "connexion":
        app.add_middleware(LimitsAndFaults, position=MiddlewarePosition.BEFORE_VALIDATION)
    for exception in (Exception, ProblemException, HTTPException):
        app.add_error_handler(exception, handle_error)

    cors = VendorCors(
        app,
        vendors=runtime.vendors,
        error_handler=handle_error,
        allow_origins=["*"],
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["Date", "Retry-After", "X-RateLimit-Remaining"],
        max_age=600,
    )
    return MockHttpMiddleware(Index(cors, runtime), runtime, router=router)
