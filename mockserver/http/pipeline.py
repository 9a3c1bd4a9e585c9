"""The compiled request pipeline: Connexion's security, limits, validation and handler call, built once per
operation instead of once per request.

Connexion's default middleware chain re-creates its parameter validator, URI parser, body validator and handler
decorator on every request, and passes each request through five more ASGI layers. `FastPipeline` takes the place
of Connexion's Security, RequestValidation, Lifespan and Context middlewares and of its final app (through
Connexion's `middlewares` extension point). It follows Connexion's rules for every decision: its security
handler factory's functions (`connexion_internals`), its URI parser and type coercion, its media-type and
response rules, and its way of building a handler's arguments (`arguments`); the request validators are the
mock's own (`validation`). tests/mockserver/test_pipeline.py compares it with Connexion's stock chain on generated
requests, and names where the two differ on purpose.
"""

from __future__ import annotations

import asyncio
import inspect
import typing as t

import orjson
from connexion import utils
from connexion.datastructures import MediaTypeDict, NoContent
from connexion.exceptions import NonConformingResponseHeaders, OAuthProblem, UnsupportedMediaTypeProblem
from connexion.lifecycle import ConnexionRequest
from connexion.operations import AbstractOperation
from connexion.security import NO_VALUE
from connexion.validators import VALIDATOR_MAP as CONNEXION_VALIDATORS
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .arguments import Arguments, argument_name, signature
from .connexion_internals import Request, RoutedAPI, RoutedMiddleware, security_functions, uri_parser
from .context import context
from .headers import first_header
from .middleware import declared_of, limit_and_inject
from .query import QueryResolver
from .read_cache import Moment, ReadCache
from .remember import remember
from .validation import NOT_PARSED, PARSED_BODY

if t.TYPE_CHECKING:
    from .fast_routing import FastRouter


#: what `ConnexionRequest.content_type` answers for a request without the header
OCTET_STREAM = "application/octet-stream"


def _security_query_params(operation: AbstractOperation) -> list[str]:
    """The query parameters that carry credentials (strict validation must not call them unknown)."""
    names = []
    for requirement in operation.security or ():
        for scheme_name in requirement:
            scheme = operation.security_schemes[scheme_name]
            if scheme["type"] == "apiKey" and scheme["in"] == "query":
                names.append(scheme["name"])
    return names


def most_specific(errors: list[Exception]) -> Exception:
    """The error Connexion's security answers when every requirement failed: a 403 (a credential without the
    rights) before a 401 (none that is valid), otherwise the lowest status (the last error of each status)."""
    by_status = {getattr(e, "status_code", getattr(e, "status", 600)): e for e in errors}
    for status in (403, 401):
        if status in by_status:
            return by_status[status]
    return by_status[min(by_status)]


class FastOperation:
    def __init__(
        self,
        operation: AbstractOperation,
        *,
        read_cache: ReadCache | None,
        api_name: str,
        security_map: dict | None,
        validator_map: dict | None,
        strict_validation: bool,
    ) -> None:
        self.operation = operation
        self.read_cache = read_cache
        self.api_name = api_name
        self.operation_id = operation.operation_id.rsplit(".", 1)[-1]
        self.declared = declared_of(api_name, self.operation_id)
        self.auth_funcs = security_functions(operation, security_map)
        # Connexion's validators, with the app's own over them, as its validation middleware takes them.
        self.validators = {**CONNEXION_VALIDATORS, **(validator_map or {})}
        self.strict_validation = strict_validation
        self.uri_parser = uri_parser(operation)
        self.parameters = self.validators["parameter"](
            operation.parameters,
            uri_parser=self.uri_parser,
            strict_validation=strict_validation,
            security_query_params=_security_query_params(operation),
        )
        # The media types the operation consumes (any, when it names none), as Connexion matches them.
        self.consumes = MediaTypeDict([(c.lower(), None) for c in operation.consumes]) if operation.consumes else None
        self._body_validators: dict[tuple[str, str], t.Any] = {}
        self._accepted_types: dict[str, bool] = {}
        self._mimetypes: dict[str, str] = {}
        function = operation.function
        self.function = function
        self.arguments, self.has_kwargs = signature(function)
        self.is_async = inspect.iscoroutinefunction(inspect.unwrap(function))
        self.produces = list(set(operation.produces))
        arguments = Arguments(operation, self.arguments, self.has_kwargs)
        self.build_arguments = arguments.build
        self.body_schema = arguments.body_schema
        # Connexion asks on every request; neither depends on anything but the operation.
        self.takes_body = operation.is_request_body_defined and (
            self.has_kwargs or argument_name(operation.body_name("")) in self.arguments
        )
        self.query_defined = bool(arguments.query_definitions)
        self.query = QueryResolver.for_operation(self.uri_parser)
        self.reads = operation.method.upper() == "GET"

    def _body_validator(self, mime_type: str, encoding: str) -> t.Any:
        key = (mime_type, encoding)
        validator = self._body_validators.get(key)
        if validator is None:
            operation = self.operation
            try:
                cls = self.validators["body"][mime_type]
            except KeyError:
                cls = None
            if cls is not None:
                validator = cls(
                    schema=self.body_schema(mime_type),
                    required=operation.request_body.get("required", False),
                    nullable=utils.is_nullable(operation.body_definition(mime_type)),
                    encoding=encoding,
                    strict_validation=self.strict_validation,
                    uri_parser=self.uri_parser,
                )
            remember(self._body_validators, key, validator or False)
        return validator or None

    def _validate_mime_type(self, mime_type: str) -> None:
        if self.consumes is not None and mime_type.lower() not in self.consumes:
            raise UnsupportedMediaTypeProblem(
                detail=f"Invalid Content-type ({mime_type}), expected {self.operation.consumes}"
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.respond(scope, receive)
        await response(scope, receive, send)

    async def respond(self, scope: Scope, receive: Receive) -> Response:
        """The operation's answer to one request, not yet sent; raises what Connexion's chain would raise."""
        served = context()
        runtime = served.runtime
        # One request object serves security, limits, parameter validation and the arguments (Connexion makes four).
        request = Request(scope, receive, uri_parser=self.uri_parser)
        if self.auth_funcs:
            await self._authenticate(request)
        vendor = runtime.vendors.get(self.api_name)
        if vendor is not None:
            await limit_and_inject(runtime.faults, vendor, request, self.operation_id, served.token_info, self.declared)

        # Connexion passes every query value on, but drops those the contract does not define: an operation that
        # defines none needs no query string parsed.
        query: dict[str, t.Any] = {}
        if self.query_defined:
            query = request.query_params if self.query is None else self.query.resolve(scope.get("query_string", b""))
        self.parameters.validate_request(request, query)
        mime_type, encoding = self._content_type(scope["headers"])
        if mime_type not in self._accepted_types:
            # Connexion builds a media-type table on each call; its verdict depends on the type alone.
            self._validate_mime_type(mime_type)
            remember(self._accepted_types, mime_type, True)
        parsed: t.Any = NOT_PARSED
        #: the receive that replays the body the validator read, for a handler that reads it again
        replay: Receive | None = None
        if self.body_schema(mime_type):
            validator = self._body_validator(mime_type, encoding)
            if validator is not None:
                replay, validated_scope = await validator.wrap_receive(receive, scope=scope)
                parsed = validated_scope.pop(PARSED_BODY, NOT_PARSED)
                if validated_scope is not scope:
                    request = request.again(validated_scope, replay)
                    scope, replay = validated_scope, None

        # Everything above (who asks, limits, faults, validation) is decided anew on every request; a kept answer
        # replaces only the handler and the rendering.
        cache = self.read_cache if self.reads else None
        key: t.Hashable = None
        started: Moment | None = None
        if cache is not None:
            key = (self, scope["path"], scope.get("query_string", b""), scope.get("scheme"), tuple(scope["headers"]))
            kept = cache.get(key)
            if kept is not None:
                return kept
            started = cache.moment()

        body = None
        content_type = first_header(scope["headers"], b"content-type")
        if content_type is None:
            content_type = OCTET_STREAM  # as request.content_type
        if self.takes_body:
            if parsed is not NOT_PARSED and utils.is_json_mimetype(content_type):
                # What `get_body` would answer: the validator parsed the same bytes with json.loads.
                body = parsed
            else:
                if replay is not None:
                    request = request.again(scope, replay)
                body = await request.get_body()
        # The media type only matters for a request body.
        mimetype = ""
        if self.operation.is_request_body_defined:
            # Connexion's own parse of the header, done once per distinct header
            mimetype = self._mimetypes.get(content_type) or remember(self._mimetypes, content_type, request.mimetype)
        kwargs = self.build_arguments(request.path_params, query, body, mimetype)
        result = self.function(**kwargs)
        if self.is_async or asyncio.iscoroutine(result):
            result = await result
        response = self._response(result)
        if cache is not None and started is not None and served.fresh_until is not None:
            cache.put(key, response, served.fresh_until, started)
        return response

    async def _authenticate(self, request: ConnexionRequest) -> None:
        """Connexion's `verify_security`: the first requirement that yields token info wins; otherwise the most
        specific error, or its 401 when no credential was given at all."""
        token_info: t.Any = NO_VALUE
        errors: list[Exception] = []
        for func in self.auth_funcs:
            try:
                token_info = func(request)
                while asyncio.iscoroutine(token_info):
                    token_info = await token_info
                if token_info is not NO_VALUE:
                    break
            except Exception as err:
                errors.append(err)
        else:
            if errors:
                raise most_specific(errors)
            raise OAuthProblem(detail="No authorization token provided")
        request.context.update({"user": token_info.get("sub", token_info.get("uid")), "token_info": token_info})

    def _content_type(self, headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
        """As Connexion's RequestValidationOperation.extract_content_type (which builds typing aliases per call)."""
        mime_type = encoding = None
        carries_body = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-type":
                mime_type, encoding = utils.split_content_type(value.decode("latin-1"))
            elif name == b"content-length":
                carries_body = value.strip() not in (b"", b"0")
            elif name == b"transfer-encoding":
                carries_body = True
        if mime_type is None:
            if carries_body:
                # A body without a type is octet-stream (RFC 9110 8.3), which no operation here consumes: the
                # vendor's "unsupported content type" error, not a handler reading bytes as if they were JSON.
                mime_type = "application/octet-stream"
            else:
                mime_type = self.operation.consumes[0] if self.operation.consumes else "application/octet-stream"
        return mime_type, encoding or "utf-8"

    def _response(self, result: t.Any) -> Response:
        if isinstance(result, Response):
            return result
        data, status, headers = _unpack(result)
        if isinstance(data, Response):
            return data
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
        produces = self.produces or (["application/json"] if data is not None else [])
        if content_type:
            if content_type not in produces:
                raise NonConformingResponseHeaders(f"Returned content type ({content_type}) is not defined")
        elif len(produces) == 1:
            content_type = produces[0]
        elif produces:
            raise NonConformingResponseHeaders(
                "Multiple response content types are defined in the operation spec,"
                " but the handler response did not specify which one to return."
            )
        if data is None or data is NoContent:
            payload = None
        elif content_type and utils.is_json_mimetype(utils.split_content_type(content_type)[0]):
            payload = orjson.dumps(data)
        else:
            payload = data
        if status is None:
            status = 204 if payload is None else 200
        headers = dict(headers)
        if content_type and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = content_type
        cls = JSONResponse if isinstance(payload, (dict, list)) else Response
        return cls(content=payload, status_code=status, media_type=content_type, headers=headers)


def _unpack(result: t.Any) -> tuple[t.Any, int | None, dict]:
    if isinstance(result, tuple):
        if len(result) == 3:
            return result[0], int(result[1]), dict(result[2] or {})
        if len(result) == 2:
            data, second = result
            if isinstance(second, int):
                return data, second, {}
            return data, None, dict(second)
        return result[0], None, {}
    return result, None, {}


class FastApi(RoutedAPI[FastOperation]):
    def __init__(
        self,
        *args: t.Any,
        api_name: str,
        read_cache: ReadCache | None = None,
        router: FastRouter | None = None,
        security_map: dict | None = None,
        validator_map: dict | None = None,
        strict_validation: bool = False,
        **kwargs: t.Any,
    ) -> None:
        self.api_name = api_name
        #: where answers to reads are kept (see `mockserver.http.read_cache`); None keeps none
        self.read_cache = read_cache
        #: where the operations are registered to be reached directly (see `mockserver.http.fast_routing`)
        self.router = router
        self.security_map = security_map
        self.validator_map = validator_map
        self.strict_validation = strict_validation
        super().__init__(*args, **kwargs)
        self.add_paths()

    def make_operation(self, operation: AbstractOperation) -> FastOperation:
        compiled = FastOperation(
            operation,
            read_cache=self.read_cache,
            api_name=self.api_name,
            security_map=self.security_map,
            validator_map=self.validator_map,
            strict_validation=self.strict_validation,
        )
        router = self.router
        if router is not None:
            router.add(
                self.base_path,
                operation.method,
                operation.path,
                operation.get_path_parameter_types(),
                operation.operation_id,
                compiled,
            )
        return compiled


class FastPipeline(RoutedMiddleware[FastApi]):
    """Runs every routed operation itself; Connexion's final app is only reached for unrouted requests."""

    api_cls = FastApi

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
