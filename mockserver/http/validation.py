"""Request validators for Connexion's validator map: the same checks as Connexion's own, compiled once per
operation instead of once per request, and failing with a structured `FieldError` (which field, which rule)
so each vendor can name the field in its own error body."""

from __future__ import annotations

import functools
import json
import re
import typing as t
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import orjson
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import NonConformingResponseBody
from connexion.json_schema import Draft4RequestValidator
from connexion.lifecycle import ConnexionRequest
from connexion.utils import is_null, is_nullable
from connexion.validators import MultiPartFormDataValidator, ParameterValidator, TextResponseBodyValidator
from jsonschema import Draft4Validator, FormatChecker, ValidationError
from starlette.types import Receive, Scope

from ..choices import Choices
from .connexion_internals import FormBodyValidator, JSONBodyValidator, JSONResponseValidator
from .context import choices_in_force
from .errors import FieldError
from .headers import first_header, header_key

#: the formats a request is held to: JSON Schema draft 4's, and `uuid`, which draft 4 leaves a comment but the
#: contracts use for ids (a Seam id that is not a UUID is a malformed request, not an unknown id)
_FORMATS = FormatChecker(())
_FORMATS.checkers = dict(Draft4Validator.FORMAT_CHECKER.checkers)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@_FORMATS.checks("uuid")
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or _UUID.fullmatch(value) is not None


@dataclass(frozen=True)
class Violation:
    location: str
    field: str | None
    rule: str
    message: str
    constraint: t.Any = None
    #: the mock choice that governs this rule here (`mockserver.choices`), when the contract marks one
    choice: str | None = None


def choice_marks(item: t.Mapping[str, t.Any]) -> dict[str, str]:
    """keyword -> the choice that governs it, from a schema's or parameter's ``x-mock-choice`` marks."""
    raw = item.get("x-mock-choice")
    marks = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    return {keyword: mark["choice"] for mark in marks if mark.get("choice") for keyword in mark.get("keywords", ())}


def tolerated(error: ValidationError, choices: Choices) -> bool:
    """Whether the current choices waive this schema error: its keyword is marked with a choice whose value is
    not the default here, or (for oneOf/anyOf) some alternative fails only by such keywords."""
    choice = choice_marks(error.schema).get(str(error.validator)) if isinstance(error.schema, dict) else None
    if choice is not None:
        return not choices.enforces(choice)
    if error.validator in ("oneOf", "anyOf") and error.context:
        by_branch: dict[t.Any, list[ValidationError]] = {}
        for sub in error.context:
            by_branch.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
        return any(all(tolerated(sub, choices) for sub in subs) for subs in by_branch.values())
    return False


def _violation(location: str, error: ValidationError, prefix: str | None = None) -> Violation:
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required":
        # jsonschema reports a missing property at its parent; name the property itself.
        missing = [
            name for name in error.validator_value if isinstance(error.instance, dict) and name not in error.instance
        ]
        if missing:
            path.append(missing[0])
    if prefix:
        path.insert(0, prefix)
    return Violation(location, ".".join(path) or None, str(error.validator), error.message, error.validator_value)


def raise_violations(violations: list[Violation]) -> None:
    """Raise the violations as one `FieldError`."""
    if violations:
        first = violations[0]
        error = FieldError(
            location=first.location,
            field=first.field,
            rule=first.rule,
            message=first.message,
            constraint=first.constraint,
        )
        error.violations = violations
        raise error


_SIMPLE_KEYS = frozenset(
    {
        "type",
        "format",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "enum",
        "default",
        "example",
        "description",
        "title",
    }
)
_CONTAINER_KEYS = frozenset(
    {"type", "properties", "required", "items", "minItems", "maxItems", "description", "example", "title"}
)
_ANNOTATIONS = frozenset({"description", "example", "title"})


def quick_check(schema: dict[str, t.Any]) -> t.Callable[[t.Any], bool] | None:
    """A fast acceptance test for a simple schema (scalars, flat objects, arrays of scalars), or None when the
    schema is not that simple.

    It only ever accepts what the JSON Schema validator accepts; whatever it does not accept is handed to the
    full validator, which decides (and words the error). So it changes speed, never the verdict."""
    if any(key.startswith("x-") for key in schema):
        # Extensions (a mock-choice mark, say) validate nothing.
        schema = {key: value for key, value in schema.items() if not key.startswith("x-")}
    all_of = schema.get("allOf")
    if all_of is not None:
        # `allOf: [one schema]` plus annotations, as a $ref with a description resolves to
        if len(all_of) != 1 or not set(schema) - {"allOf"} <= _ANNOTATIONS:
            return None
        return quick_check(all_of[0])
    kind = schema.get("type")
    if kind == "object":
        return _quick_object(schema)
    if kind == "array":
        return _quick_array(schema)
    # A format the validator's format checker knows is a rule; any other (int64, say) is a comment.
    uuid_format = schema.get("format") == "uuid"
    if not set(schema) <= _SIMPLE_KEYS or (schema.get("format") in _FORMATS.checkers and not uuid_format):
        return None
    low, high = schema.get("minimum"), schema.get("maximum")
    min_len, max_len = schema.get("minLength"), schema.get("maxLength")
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
    enum = schema.get("enum")
    if kind == "integer":

        def check_int(value: t.Any) -> bool:
            return (
                type(value) is int
                and (low is None or value >= low)
                and (high is None or value <= high)
                and (enum is None or value in enum)
            )

        return check_int
    if kind == "string":

        def check_str(value: t.Any) -> bool:
            return (
                type(value) is str
                and (min_len is None or len(value) >= min_len)
                and (max_len is None or len(value) <= max_len)
                and (pattern is None or pattern.search(value) is not None)
                and (enum is None or value in enum)
                and (not uuid_format or _UUID.fullmatch(value) is not None)
            )

        return check_str
    return None


def _quick_object(schema: dict[str, t.Any]) -> t.Callable[[t.Any], bool] | None:
    if not set(schema) <= _CONTAINER_KEYS - {"items", "minItems", "maxItems"}:
        return None
    checks = {}
    for name, prop in schema.get("properties", {}).items():
        check = quick_check(prop)
        if check is None:
            return None
        checks[name] = check
    required = tuple(schema.get("required", ()))

    def check_object(value: t.Any) -> bool:
        return (
            type(value) is dict
            and all(name in value for name in required)
            and all(check(value[name]) for name, check in checks.items() if name in value)
        )

    return check_object


def _quick_array(schema: dict[str, t.Any]) -> t.Callable[[t.Any], bool] | None:
    if not set(schema) <= _CONTAINER_KEYS - {"properties", "required"} or "items" not in schema:
        return None
    item = quick_check(schema["items"])
    if item is None:
        return None
    low, high = schema.get("minItems"), schema.get("maxItems")

    def check_array(value: t.Any) -> bool:
        return (
            type(value) is list
            and (low is None or len(value) >= low)
            and (high is None or len(value) <= high)
            and all(item(element) for element in value)
        )

    return check_array


class CompiledParameterValidator(ParameterValidator):
    """Validates path, query, header and cookie parameters with validators built once."""

    def __init__(
        self,
        parameters: t.Any,
        uri_parser: t.Any,
        strict_validation: bool = False,
        security_query_params: t.Any = None,
    ) -> None:
        super().__init__(parameters, uri_parser, strict_validation, security_query_params)
        self._compiled: dict[str, list[tuple[str, t.Any, bool, bool, t.Any, Draft4Validator, dict[str, str]]]] = {}
        for location in ("path", "header", "query", "cookie"):
            for param in self.parameters.get(location, []):
                schema = param.get("schema", param)
                name = param["name"]
                # how the value is looked up: by its argument name, its raw header name or as it is
                if location == "path":
                    key: t.Any = name.replace("-", "_")
                elif location == "header":
                    key = header_key(name)
                else:
                    key = name
                self._compiled.setdefault(location, []).append(
                    (
                        name,
                        key,
                        bool(param.get("required")),
                        is_nullable(param),
                        quick_check(schema),
                        Draft4Validator(schema, format_checker=_FORMATS),
                        {**choice_marks(param), **choice_marks(schema)},
                    )
                )

    def validate_request(self, request: ConnexionRequest, query: dict[str, t.Any] | None = None) -> None:
        """Raise the violations of the request's parameters; ``query`` is its query already resolved, if it is."""
        violations: list[Violation] = []
        for location, params in self._compiled.items():
            # Only the locations this operation declares are parsed (query and cookies cost a parse each).
            lookup: t.Callable[[t.Any], t.Any]
            if location == "query":
                lookup = (request.query_params if query is None else query).get
            elif location == "path":
                lookup = request.path_params.get
            elif location == "header":
                lookup = functools.partial(first_header, request.scope["headers"])
            else:
                lookup = request.cookies.get
            for name, key, required, nullable, quick, validator, marks in params:
                value = lookup(key)
                if value is None:
                    if required:
                        violations.append(
                            Violation(
                                location,
                                name,
                                "required",
                                f"Missing {location} parameter '{name}'",
                                choice=marks.get("required"),
                            )
                        )
                    continue
                if (nullable and is_null(value)) or (quick is not None and quick(value)):
                    continue
                for error in validator.iter_errors(value):
                    rule = str(error.validator)
                    violations.append(
                        Violation(location, name, rule, error.message, error.validator_value, marks.get(rule))
                    )
                    break
        if any(v.choice for v in violations):
            violations = _waive(violations, request, query)
        raise_violations(violations)


def _waive(violations: list[Violation], request: ConnexionRequest, query: dict[str, t.Any] | None) -> list[Violation]:
    """The violations the request's choices keep. A query value waived for its type cannot reach the handler as
    that type, so it is taken out of the request: the handler sees no value, as a lenient server reads it."""
    choices = choices_in_force()
    kept, dropped = [], set()
    for violation in violations:
        if violation.choice is None or choices.enforces(violation.choice):
            kept.append(violation)
        elif violation.location == "query" and violation.rule in ("type", "format") and violation.field:
            dropped.add(violation.field)
    if dropped:
        if query is not None:
            for name in dropped:
                query.pop(name, None)
        pairs = parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        request.scope["query_string"] = urlencode([(k, v) for k, v in pairs if k not in dropped]).encode("latin-1")
    return kept


async def _all_messages(receive: Receive) -> list[t.MutableMapping[str, t.Any]]:
    """The request's messages up to the last piece of its body (or a disconnect)."""
    messages = []
    more_body = True
    while more_body:
        message = await receive()
        messages.append(message)
        more_body = message.get("more_body", False)
    return messages


class _BodyMixin:
    """Shared by the JSON and form validators: one compiled schema validator, all violations reported."""

    body_schema: dict[str, t.Any]
    body_nullable: bool

    def _compiled(self) -> Draft4Validator:
        compiled = getattr(self, "_compiled_validator", None)
        if compiled is None:
            compiled = Draft4RequestValidator(self.body_schema, format_checker=_FORMATS)
            self._compiled_validator = compiled
            # Connexion attaches the contract's `components` for $ref resolution; they validate nothing.
            self._quick = quick_check({k: v for k, v in self.body_schema.items() if k != "components"})
        return compiled

    async def whole_body(self, receive: Receive, scope: Scope) -> tuple[Receive, Scope]:
        """A body sent in chunks (`Transfer-Encoding: chunked`, no Content-Length), read whole and announced with
        its length, as the web server in front of a vendor's application hands it on. Connexion takes a request
        without Content-Length for one without a body: a chunked login was answered "The login field is
        required"."""
        messages = await _all_messages(receive)
        length = sum(len(message.get("body", b"")) for message in messages)
        headers = [(name, value) for name, value in scope["headers"] if name.lower() != b"transfer-encoding"]
        scope["headers"] = [*headers, (b"content-length", str(length).encode())]
        return self.replay(receive, messages), scope  # type: ignore[attr-defined]

    def _check(self, body: t.Any) -> None:
        if body is None and not self.body_nullable:
            raise_violations([Violation("body", None, "required", "Request body must not be empty")])
        validator = self._compiled()
        if self._quick is not None and self._quick(body):
            return
        errors = sorted(validator.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])
        if errors:
            choices = choices_in_force()
            errors = [error for error in errors if not tolerated(error, choices)]
        raise_violations([_violation("body", error) for error in errors])


#: the scope key under which `CompiledJSONBodyValidator` leaves the body it parsed, for the compiled pipeline
PARSED_BODY = "mockserver.parsed_body"
#: what a scope without that key holds (a parsed body may be None: the JSON text `null`)
NOT_PARSED = object()


class CompiledJSONBodyValidator(_BodyMixin, JSONBodyValidator):
    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        """Connexion's `wrap_receive` without its per-request Headers object and async generator, for a request
        that announces a body; the rest (no body, a default body, mutable validation) is Connexion's own.

        A chunked body is read as a body (see `_BodyMixin.whole_body`)."""
        length = first_header(scope["headers"], b"content-length")
        if length is None and first_header(scope["headers"], b"transfer-encoding") is not None:
            receive, scope = await self.whole_body(receive, scope)
            length = first_header(scope["headers"], b"content-length")
        if self.MUTABLE_VALIDATION or not int(length if length is not None else 0):
            return await super().wrap_receive(receive, scope=scope)
        messages = await _all_messages(receive)
        body = self._decode(b"".join([message.get("body", b"") for message in messages]), scope)
        if not (body is None and self.body_nullable):
            self._check(body)
        return self.replay(receive, messages), scope

    async def parse_body(self, stream: t.AsyncGenerator[bytes, None], scope: Scope) -> t.Any:
        return self._decode(b"".join([chunk async for chunk in stream]), scope)

    def _decode(self, raw: bytes, scope: Scope) -> t.Any:
        if not raw:
            return None
        try:
            # The bytes as they are, as Connexion's `get_body` reads them for the handler: what is validated is
            # what the handler gets. (JSON has no charset parameter, RFC 8259 §11: a declared one changes
            # nothing; json.loads reads UTF-8 and recognises UTF-16 and UTF-32.)
            body = json.loads(raw)
            # JSON escapes can smuggle in lone UTF-16 surrogates, which are not text; refuse them as malformed.
            _refuse_surrogates(body)
        except (UnicodeError, ValueError, RecursionError) as exc:
            raise_violations([Violation("body", None, "json", f"Malformed JSON body: {exc}")])
        # The pipeline may hand it on instead of parsing the bytes again.
        scope[PARSED_BODY] = body
        return body

    def validate_body(self, body: t.Any) -> dict | None:
        self._check(body)
        return body


def _refuse_surrogates(body: t.Any) -> None:
    """Raise UnicodeError when some text in ``body`` holds a lone surrogate.

    orjson checks every string it writes and refuses lone surrogates, about ten times faster than the json
    module writes; whatever else it refuses (integers past 64 bits, nesting past 255) the json module decides."""
    try:
        orjson.dumps(body)
    except orjson.JSONEncodeError:
        json.dumps(body, ensure_ascii=False).encode("utf-8")


class CompiledFormValidator(_BodyMixin, FormBodyValidator):
    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        """Connexion's, for a chunked body too (see `_BodyMixin.whole_body`)."""
        headers = scope["headers"]
        if first_header(headers, b"content-length") is None and first_header(headers, b"transfer-encoding"):
            receive, scope = await self.whole_body(receive, scope)
        return await super().wrap_receive(receive, scope=scope)

    async def parse_body(self, stream: t.AsyncGenerator[bytes, None], scope: Scope) -> dict:
        try:
            return await super().parse_body(stream, scope)
        except Exception as exc:  # a malformed form body is the client's fault, never a 500
            raise_violations([Violation("body", None, "form", f"Malformed form body: {exc}")])
            raise

    def validate_body(self, body: t.Any) -> dict | None:
        if not isinstance(body, dict):
            raise_violations([Violation("body", None, "type", "The form body must be a mapping")])
        self._check(body)
        return body


class ChoiceAwareJSONResponseBodyValidator(JSONResponseValidator):
    """Connexion's response check, leaving out what the mock's current choices make it answer on purpose (an
    intercom's `created_at` in another form, say)."""

    def validate_body(self, body: t.Any) -> None:
        choices = choices_in_force()
        for error in self.validator.iter_errors(body):
            if not tolerated(error, choices):
                path = "".join(f"[{part!r}]" for part in error.absolute_path)
                raise NonConformingResponseBody(
                    detail=f"Response body does not conform to specification. {error.message} at {path or 'body'}"
                )


VALIDATOR_MAP = {
    "parameter": CompiledParameterValidator,
    "body": MediaTypeDict(
        {
            "*/*json": CompiledJSONBodyValidator,
            "application/x-www-form-urlencoded": CompiledFormValidator,
            "multipart/form-data": MultiPartFormDataValidator,
        }
    ),
    "response": MediaTypeDict(
        {
            "*/*json": ChoiceAwareJSONResponseBodyValidator,
            "text/plain": TextResponseBodyValidator,
        }
    ),
}
