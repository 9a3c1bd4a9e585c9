"""`create_app`: the one place that wires the building, the store, the clock and the four APIs together."""

from __future__ import annotations

import copy
import logging
import pathlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from connexion import AsyncApp
from connexion.exceptions import (
    BadRequestProblem,
    NonConformingResponse,
    ProblemException,
    UnsupportedMediaTypeProblem,
)
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
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

from .choices import Choices
from .contracts import document, load_contract
from .domain.building import Building, Rules
from .domain.clock import ManualClock
from .domain.errors import DomainError
from .http.cors import VendorCors
from .http.errors import ApiError, FieldError
from .http.fast_routing import FastRouter
from .http.middleware import LimitsAndFaults, MockHttpMiddleware, routing_info
from .http.pipeline import FastPipeline
from .http.read_cache import ReadCache
from .http.security import security_map
from .http.unavailable import unavailable
from .http.validation import VALIDATOR_MAP
from .index import Index
from .push import PusherHub
from .runtime import Runtime, Settings
from .store import Store, open_store
from .store.base import StoreUnavailable
from .vendors.magicline import MagiclineVendor
from .vendors.seam import SeamVendor
from .vendors.vms import VmsVendor, push_subscriber

log = logging.getLogger("mockserver")

VENDOR_APIS = ("magicline", "seam", "vms")
DEMO_FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "demo.yaml"
VENDOR_CLASSES = {"magicline": MagiclineVendor, "seam": SeamVendor, "vms": VmsVendor}


@dataclass
class MockApp:
    """The ASGI application of one mock and the runtime behind it."""

    asgi: ASGIApp
    runtime: Runtime

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
    stock middleware chain, which decides the same, only slower (kept to prove that). ``read_cache`` lets the
    compiled pipeline serve a read's answer again while nothing it depends on has changed
    (`mockserver.http.read_cache`). ``choices`` sets the mock's choices (`mockserver.choices`) over the fixtures'
    `choices:`; a state that already exists keeps the ones it saved except those ``choices`` names."""
    unknown = set(apis) - set(VENDOR_APIS)
    if unknown:
        raise ValueError(f"unknown APIs {sorted(unknown)}; choose from {', '.join(VENDOR_APIS)}")
    # Connexion warns on every body of an operation that accepts several media types; ours do on purpose.
    logging.getLogger("connexion.operations.openapi3").setLevel(logging.ERROR)
    fixture_data = load_fixtures(fixtures)
    given_choices = {**(fixture_data.get("choices") or {}), **(choices or {})}
    store = store if store is not None else open_store(str(state_path) if state_path else None)
    # Replicas sharing a store must not draw the same ids and codes from the same seed.
    shared = bool(getattr(store, "shared", False))
    clock = clock or ManualClock()
    building = Building(store, clock, seed=None if shared else seed, rules=rules)
    runtime = Runtime(
        building,
        clock,
        fixtures=fixture_data,
        settings=settings,
        public_url=public_url,
        control_token=control_token,
        seed=seed,
        choices=Choices(given_choices),
    )

    def start() -> None:  # one operation: with a shared store, two replicas starting at once fill it once
        if building.is_empty():
            runtime.reset()
        else:
            saved = building.meta("clock")
            if saved:
                clock.restore(saved)
            runtime.set_choices(Choices({**(building.meta("choices") or {}), **given_choices}))
        if shared:
            # Channel auth signed by one replica is checked by another: they share the Pusher secret.
            pusher = building.meta("pusher")
            if pusher is None:
                building.save_meta("pusher", {"secret": runtime.pusher_app_secret})
            else:
                runtime.pusher_app_secret = pusher["secret"]

    building.atomically(start)
    clock.on_change = lambda _clock: (
        runtime.save_clock(),
        building.tick(),
        runtime.webhooks.wake(),
        runtime.panel.poke(),
    )

    runtime.hub = PusherHub(
        runtime.pusher_app_key, runtime.pusher_app_secret, rng=random.Random(None if shared else seed)
    )
    if shared:
        from .fanout import RedisFanout
        from .shared_state import RedisJournal, RedisLimiter

        url, namespace = store.url, store.namespace  # type: ignore[attr-defined]
        runtime.journal = RedisJournal(url, namespace, runtime.settings.journal_size)
        runtime.limiter = RedisLimiter(url, namespace)  # type: ignore[assignment]
        runtime.share(RedisFanout(runtime.hub, url, namespace))
    building.subscribe(push_subscriber(runtime))
    building.subscribe(runtime.webhooks.on_event)
    building.subscribe(runtime.panel.poke)

    if pipeline == "compiled":
        if read_cache and store.revision is not None:
            runtime.read_cache = ReadCache(store, clock, building)
        if not validate_responses:
            # Response validation sits between routing and the operations, so it needs the full chain.
            runtime.fast_router = FastRouter(_error_handler)
        chain: list[Any] = [ServerErrorMiddleware, ExceptionMiddleware, SwaggerUIMiddleware, RoutingMiddleware]
        if validate_responses:
            chain.append(ResponseValidationMiddleware)
        chain.append(FastPipeline)
    elif pipeline == "connexion":
        chain = list(ConnexionMiddleware.default_middlewares)
    else:
        raise ValueError(f"unknown pipeline {pipeline!r}")
    app = AsyncApp(__name__, validator_map=VALIDATOR_MAP, validate_responses=validate_responses, middlewares=chain)
    # Accepted credentials are kept with the read cache, on the same terms: until the store changes.
    revision = (lambda: store.revision) if runtime.read_cache is not None else None
    for name in apis:
        vendor = VENDOR_CLASSES[name](runtime)
        runtime.vendors[name] = vendor
        if isinstance(vendor, MagiclineVendor):
            securities = security_map(api_key=vendor.verify_api_key, revision=revision)
        else:
            securities = security_map(bearer=vendor.verify_bearer, revision=revision)  # type: ignore[attr-defined]
        app.add_api(
            _contract(name),
            base_path=vendor.prefix,
            name=name,
            resolver=RelativeResolver(f"mockserver.vendors.{name}"),
            security_map=securities,
            swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs"),
            runtime=runtime,
            api_name=name,
        )
    app.add_api(
        _contract("control"),
        base_path="/_mock",
        name="control",
        resolver=RelativeResolver("mockserver.control"),
        security_map=security_map(api_key=lambda request, token, scheme: {"sub": "control"}),
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs"),
        runtime=runtime,
        api_name="control",
    )
    if pipeline == "connexion":
        app.add_middleware(LimitsAndFaults, position=MiddlewarePosition.BEFORE_VALIDATION)
    for exception in (Exception, ProblemException, HTTPException):
        app.add_error_handler(exception, _error_handler)

    cors = VendorCors(
        app,
        error_handler=_error_handler,
        allow_origins=["*"],
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["Date", "Retry-After", "X-RateLimit-Remaining"],
        max_age=600,
    )
    return MockApp(asgi=MockHttpMiddleware(Index(cors, runtime), runtime), runtime=runtime)


def _as_api_error(vendor: Any, request: ConnexionRequest, exc: Exception, operation_id: str | None) -> ApiError:
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
        # Starlette names only the first matching route's methods; the contract knows them all.
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
        if vendor.runtime.choices.value("unsupported_method") == "not_found":
            return vendor.not_found(request, f"The route {request.url.path} could not be found.")
        allowed = ", ".join(methods) or (getattr(exc, "headers", None) or {}).get("Allow", "")
        return vendor.method_not_allowed(request, allowed)
    if isinstance(exc, ProblemException | HTTPException) and status and 400 <= status < 500:
        return vendor.invalid(
            request,
            FieldError(location="body", field=None, rule="json", message=str(getattr(exc, "detail", exc))),
            operation_id,
        )
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return vendor.server_error(request)


async def _error_handler(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    runtime: Runtime = request.scope["state"]["mock"]
    vendor = runtime.vendor_for_path(request.url.path)
    operation_id, _ = routing_info(request.scope)
    if vendor is None:
        return _problem(request, exc)
    error = _as_api_error(vendor, request, exc, operation_id)
    response = error.response()
    body = b"" if request.method == "HEAD" else response.body
    return ConnexionResponse(
        status_code=error.status_code,
        mimetype=error.media_type if body else None,
        body=body,
        headers={k: v for k, v in error.headers.items()},
    )


def _problem(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """The control API (and paths of no API) answer RFC 7807 problems."""
    import json

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
